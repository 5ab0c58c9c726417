"""Planning many specs in forked workers: same results, same order, same bytes as one process."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlc.compiler.cli import main
from mlc.compiler.plan import forked_map
from mlc.compiler.plan.forked_map import map_forked, worker_count
from plan_fixtures import write_project

needs_two_cpus = pytest.mark.skipif(
    forked_map.worker_count(10_000) < 2, reason="needs Linux and at least two CPUs to fork workers"
)


@needs_two_cpus
def test_results_come_back_in_order_from_other_processes() -> None:
    offset = 7  # a closure: nothing but indices is pickled

    def slow(n: int) -> tuple[int, int]:
        time.sleep(0.005)  # long enough for every worker to get a share
        return n + offset, os.getpid()

    results = map_forked(slow, list(range(100)))
    assert [value for value, _ in results] == [n + 7 for n in range(100)]
    pids = {pid for _, pid in results}
    assert os.getpid() not in pids and len(pids) >= 2


def test_few_items_or_parallelism_one_stay_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {pid for pid in map_forked(lambda _: os.getpid(), [1, 2, 3])} == {os.getpid()}
    monkeypatch.setenv("MLC_PARALLELISM", "1")
    assert worker_count(10_000) == 1
    assert {pid for pid in map_forked(lambda _: os.getpid(), list(range(100)))} == {os.getpid()}


@needs_two_cpus
def test_an_error_in_a_worker_reaches_the_caller() -> None:
    def fails_on_42(n: int) -> int:
        if n == 42:
            raise ValueError("bad item 42")
        return n

    with pytest.raises(ValueError, match="bad item 42"):
        map_forked(fails_on_42, list(range(100)))


@needs_two_cpus
def test_planning_a_monorepo_in_workers_matches_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(40):
        write_project(tmp_path / f"model-{index:02d}", name=f"model-{index:02d}", replicas=1 + index % 5)
    (tmp_path / "model-07" / "requirements.lock").write_text("numpy>=2\n")  # one invalid spec
    monkeypatch.chdir(tmp_path)
    outputs = {}
    for parallelism in ("1", "8"):
        monkeypatch.setenv("MLC_PARALLELISM", parallelism)
        result = CliRunner().invoke(main, ["plan", "-f", ".", "--format", "json"])
        outputs[parallelism] = (result.exit_code, result.stdout, result.stderr)
    assert outputs["1"] == outputs["8"]
    assert outputs["1"][0] == 1
    assert "model-07/requirements.lock:1:6: error" in outputs["1"][2]
