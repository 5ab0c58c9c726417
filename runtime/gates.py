"""The promotion gates: metric values in, a verdict per gate out (pure), and its two views.

`min` / `max` are absolute bounds on the challenger. `max_drop` (higher-is-better metrics) and
`max_rise` (lower-is-better) compare with the champion; without a champion they do not apply
and `first_model` decides: `allow` passes on the absolute gates alone, `block` fails.
A value that is not a number (NaN: e.g. roc_auc on one class) fails its gate.

A pull request's check compares like with like: its smoke model against the base branch's code
trained the same way (the baseline, in place of the champion), with the relative gates enforced
and the absolute ones advisory (`absolute_enforced=False`): a model trained for a few epochs on a
sample is not expected to meet production bounds, so those are reported and never decide.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace

from mlc.runtime.contract.config import Gate

REPORT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class GateResult:
    metric: str
    rule: str  # min | max | max_drop | max_rise
    bound: float
    challenger: float
    champion: float | None
    passed: bool
    detail: str
    enforced: bool = True  # False: reported, not part of the verdict (an advisory absolute gate)


RELATIVE_RULES = ("max_drop", "max_rise")


@dataclass
class GateReport:
    model: str
    challenger_version: str
    champion_version: str | None
    challenger_metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    results: list[GateResult]
    passed: bool
    notes: list[str] = field(default_factory=list)
    compared_with: str = "champion"  # the alias relative gates compare with (a PR: its base's model)


def check_gate(gate: Gate, challenger: dict[str, float], champion: dict[str, float] | None) -> GateResult | None:
    """One gate's verdict; None when it compares with a champion and there is none."""
    rule, bound = next((k, v) for k in ("min", "max", "max_drop", "max_rise") if (v := getattr(gate, k)) is not None)
    value = challenger[gate.metric]
    base = None if champion is None else champion[gate.metric]
    if rule in ("max_drop", "max_rise") and base is None:
        return None
    if math.isnan(value) or (base is not None and math.isnan(base)):
        return GateResult(gate.metric, rule, bound, value, base, False, "not a number")
    # The detail states the relation that holds: `0.51 >= 0.45` on a pass, `0.24 < 0.45` on a failure.
    if rule == "min":
        passed = value >= bound
        detail = f"{value:.4g} {'>=' if passed else '<'} {bound:g}"
    elif rule == "max":
        passed = value <= bound
        detail = f"{value:.4g} {'<=' if passed else '>'} {bound:g}"
    elif rule == "max_drop":
        assert base is not None
        passed = value >= base - bound
        detail = f"drop {base - value:.4g} {'<=' if passed else '>'} {bound:g} (champion {base:.4g})"
    else:
        assert base is not None
        passed = value <= base + bound
        detail = f"rise {value - base:.4g} {'<=' if passed else '>'} {bound:g} (champion {base:.4g})"
    return GateResult(gate.metric, rule, bound, value, base, passed, detail)


def evaluate_gates(
    gates: list[Gate],
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    first_model: str,
    absolute_enforced: bool = True,
) -> tuple[list[GateResult], bool, list[str]]:
    """Every gate's result, the overall verdict, and notes explaining skipped or blocked gates."""
    results, notes = [], []
    for gate in gates:
        result = check_gate(gate, challenger, champion)
        if result is None:
            notes.append(f"{gate.metric}: no champion to compare with; gate skipped")
        elif not absolute_enforced and result.rule not in RELATIVE_RULES:
            results.append(replace(result, enforced=False))
        else:
            results.append(result)
    if not absolute_enforced and any(not r.enforced for r in results):
        notes.append(
            "absolute gates (min, max) are advisory here: a smoke model trained on a sample is not held to "
            "production bounds; the relative gates decide"
        )
    passed = all(result.passed for result in results if result.enforced)
    if champion is None and first_model == "block":
        passed = False
        notes.append("no champion yet and first_model is block: a person promotes the first model")
    return results, passed, notes


def render_gate_markdown(report: GateReport) -> str:
    """The report for people (CI step summary, pull request)."""
    verdict = "passed" if report.passed else "failed"
    champion = f"version {report.champion_version}" if report.champion_version else "none"
    base = report.compared_with
    lines = [
        f"## Gate {verdict}: {report.model} version {report.challenger_version}",
        "",
        f"Challenger: version {report.challenger_version}; {base}: {champion}.",
        "",
        f"| gate | challenger | {base} | result |",
        "| --- | --- | --- | --- |",
    ]
    for result in report.results:
        champion_value = "" if result.champion is None else f"{result.champion:.4g}"
        mark = "pass" if result.passed else "**FAIL**"
        if not result.enforced:
            mark = f"advisory, {'pass' if result.passed else 'fail'}"
        lines.append(
            f"| {result.metric} {result.rule} {result.bound:g} | {result.challenger:.4g} | {champion_value} "
            f"| {mark}: {result.detail} |"
        )
    lines += ["", f"| metric | challenger | {base} |", "| --- | --- | --- |"]
    for name, value in report.challenger_metrics.items():
        base = "" if report.champion_metrics is None else f"{report.champion_metrics[name]:.4g}"
        lines.append(f"| {name} | {value:.4g} | {base} |")
    if report.notes:
        lines += ["", *(f"- {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"


def render_gate_json(report: GateReport) -> str:
    """The report as stable JSON (`format_version` 1); NaN is written as null."""

    def finite(value: object) -> object:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [finite(v) for v in value]
        return value

    data = {"format_version": REPORT_FORMAT_VERSION, **asdict(report)}
    return json.dumps(finite(data), indent=2, sort_keys=True) + "\n"
