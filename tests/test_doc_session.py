"""The doc test's reader (tests/doc_session.py): what it runs, and what it accepts as the same output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from doc_session import matches, read_steps, rewrite_outputs, run_session

PAGE = """Intro.

<!-- file: hello.py -->
```python
print("hello from a file")
```

```console
$ python3 hello.py
hello from a file
$ mlc run train
$ mlc-runtime train --config c.json
epoch 1/2  train_loss 0.5, 1,000 rows/s, 0:01 elapsed, about 0:01 left
```

<!-- uncomment: spec.yaml -->
```yaml
  batch:
    input: in/
```

```console
$ cat spec.yaml
serve:
  batch:
    input: in/
```
"""


def test_steps_are_read_in_order_and_mlc_runs_echo_is_output() -> None:
    steps = read_steps(PAGE)
    assert [(s.kind, s.path or (s.command.text if s.command else "")) for s in steps] == [
        ("file", "hello.py"),
        ("command", "python3 hello.py"),
        ("command", "mlc run train"),
        ("uncomment", "spec.yaml"),
        ("command", "cat spec.yaml"),
    ]
    assert steps[2].command is not None and steps[2].command.shown[0] == "$ mlc-runtime train --config c.json"


def test_volatile_values_compare_by_shape_and_everything_else_exactly() -> None:
    shown = ["epoch 1/2  train_loss 0.5, 1,000 rows/s, 0:01 elapsed, about 0:01 left", "run abc-train-dev-1a2b3c4"]
    same = ["epoch 1/2  train_loss 0.4312, 987 rows/s, 0:02 elapsed, about 0:03 left", "run abc-train-dev-9f8e7d6"]
    assert matches(shown, same)
    assert not matches(shown, [same[0].replace("1/2", "2/2"), same[1]])
    assert not matches(shown, [same[0], "run abc-train-prod-9f8e7d6"])
    assert not matches(["accuracy 0.9912"], ["accuracy 0.9913"])  # metrics are not volatile
    assert matches(["p 0.9999999999999958"], ["p 0.9999999999999912"])  # a float's far digits are


def test_an_ellipsis_stands_for_any_lines_and_only_there() -> None:
    assert matches(["first", "...", "last"], ["first", "a", "b", "last"])
    assert matches(["first", "...", "last"], ["first", "last"])
    assert not matches(["first", "...", "last"], ["first", "a", "b"])
    assert not matches(["first"], ["first", "extra"])


def test_the_session_runs_files_commands_and_uncomments_and_can_be_rewritten(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("serve:\n  # batch:\n  #   input: in/\n")
    page = PAGE.replace("$ mlc run train\n$ mlc-runtime train --config c.json\n", "$ echo 'epoch 1/2'\n")
    steps = read_steps(page)
    outputs = run_session(steps, tmp_path, dict(os.environ), timeout=60)
    assert outputs == [["hello from a file"], ["epoch 1/2"], ["serve:", "  batch:", "    input: in/"]]
    commands = [s.command for s in steps if s.command is not None]
    assert [matches(c.shown, real) for c, real in zip(commands, outputs, strict=True)] == [True, False, True]
    rewritten = rewrite_outputs(page, steps, outputs)
    assert "$ echo 'epoch 1/2'\nepoch 1/2\n```" in rewritten and rewritten.count("hello from a file") == 2


def test_a_line_that_is_not_there_to_uncomment_stops_the_session(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text("serve: {}\n")
    steps = read_steps(PAGE)[3:]
    with pytest.raises(AssertionError, match="has no line '  batch:' commented out to uncomment"):
        run_session(steps, tmp_path, dict(os.environ), timeout=60)
