"""The loader: positions, duplicate keys, aliases, size, YAML 1.1 surprises."""

from __future__ import annotations

import time
from pathlib import Path

from mlc.compiler.load.document import MAX_SPEC_BYTES, parse_spec_text, read_spec


def test_positions_of_keys_and_values() -> None:
    doc, diagnostics = parse_spec_text("a:\n  b: 1\n  c: [x, y]\n")
    assert not diagnostics and doc is not None
    assert doc.data == {"a": {"b": 1, "c": ["x", "y"]}}
    pos = doc.source.value_position(("a", "c", 1))
    assert (pos.line, pos.column) == (3, 10)
    key = doc.source.key_position(("a", "b"))
    assert (key.line, key.column) == (2, 3)
    # A missing path falls back to its nearest existing ancestor.
    assert doc.source.value_position(("a", "b", "zz")).line == 2


def test_duplicate_key_is_reported_at_the_second_occurrence() -> None:
    _, diagnostics = parse_spec_text("a: 1\nb: 2\na: 3\n")
    assert [d.render() for d in diagnostics] == [
        "mlproject.yaml:3:1: error: duplicate key 'a' (first defined at line 1)\n"
        "  hint: each key may appear once per mapping; merge the two entries"
    ]


def test_alias_bomb_is_refused_in_milliseconds() -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    start = time.perf_counter()
    doc, diagnostics = parse_spec_text("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 0.1
    assert doc is None
    assert "anchors and aliases" in diagnostics[0].message
    assert diagnostics[0].position is not None and diagnostics[0].position.line == 1


def test_merge_keys_are_refused() -> None:
    _, diagnostics = parse_spec_text("a:\n  <<: {b: 1}\n")
    assert diagnostics and "merge keys" in diagnostics[0].message


def test_oversize_input_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "mlproject.yaml"
    big.write_text("a: " + "x" * (MAX_SPEC_BYTES + 1) + "\n")
    doc, diagnostics = read_spec(big, "mlproject.yaml")
    assert doc is None and "larger than 1024 KiB" in diagnostics[0].message


def test_yaml_1_1_words_stay_strings() -> None:
    doc, _ = parse_spec_text("on: yes\nno: off\ny: n\nmode: 0755\nsexagesimal: 1:20\nunderscored: 1_000\n")
    assert doc is not None
    assert doc.data == {
        "on": "yes",
        "no": "off",
        "y": "n",
        "mode": "0755",
        "sexagesimal": "1:20",
        "underscored": "1_000",
    }


def test_yaml_1_2_core_scalars() -> None:
    doc, _ = parse_spec_text("t: true\nf: False\nn: null\ne:\ni: -12\nh: 0x1F\no: 0o17\nx: 1.5e3\ns: '3.10'\n")
    assert doc is not None
    assert doc.data == {
        "t": True,
        "f": False,
        "n": None,
        "e": None,
        "i": -12,
        "h": 31,
        "o": 15,
        "x": 1500.0,
        "s": "3.10",
    }


def test_not_utf8(tmp_path: Path) -> None:
    spec = tmp_path / "mlproject.yaml"
    spec.write_bytes(b"a: \xff\xfe\n")
    doc, diagnostics = read_spec(spec, "mlproject.yaml")
    assert doc is None and "not UTF-8" in diagnostics[0].message


def test_missing_file_teaches(tmp_path: Path) -> None:
    doc, diagnostics = read_spec(tmp_path / "mlproject.yaml")
    assert doc is None and "mlc init" in diagnostics[0].hint


def test_empty_file_and_scalars_are_not_specs() -> None:
    for text, found in (("", "an empty file"), ("42\n", "a int"), ("- a\n", "a list")):
        _, diagnostics = parse_spec_text(text)
        assert diagnostics[0].message == f"the spec must be a mapping, found {found}"


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    _, diagnostics = parse_spec_text("a: " + "[" * 200 + "]" * 200 + "\n")
    assert diagnostics and "nesting deeper" in diagnostics[0].message


def test_custom_tags_are_refused() -> None:
    _, diagnostics = parse_spec_text("a: !!python/object:os.system ls\n")
    assert diagnostics and "unsupported YAML tag" in diagnostics[0].message
