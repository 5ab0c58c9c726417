"""The promotion gates: metric values in, a verdict per gate out (pure), and its two views.

`min` / `max` are absolute bounds on the challenger. `max_drop` (higher-is-better metrics) and
`max_rise` (lower-is-better) compare with the champion; without a champion they do not apply
and `first_model` decides: `allow` passes on the absolute gates alone, `block` fails.
A value that is not a number (NaN: e.g. roc_auc on one class) fails its gate.

Every line of the report reads as a sentence (`f1 must be at least 0.45` / `failed: 0.2005 is
below 0.45`), and a legend under each table says what its columns hold.

A pull request's check compares like with like: its smoke model against the base branch's code
trained the same way (the baseline alias, in place of the champion), with the relative gates
enforced and the absolute ones advisory (`absolute_enforced=False`): a model trained for a few
epochs on a sample is not expected to meet production bounds, so those are reported and never
decide.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace

from mlc.runtime.contract import metric_is_higher_better
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
    detail: str  # why, as a sentence: `0.2005 is below 0.45`, `dropped 0.02, more than 0.01 ...`
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
    dataset: str | None = None  # the evaluate.dataset both models were scored on
    rows: int | None = None
    challenger_alias: str = "challenger"
    champion_alias: str = "champion"  # what relative gates compare with (a PR: its base's model)


def rule_sentence(metric: str, rule: str, bound: float) -> str:
    """The gate as a rule people read: `f1 must be at least 0.45`."""
    return {
        "min": f"{metric} must be at least {bound:g}",
        "max": f"{metric} must be at most {bound:g}",
        "max_drop": f"{metric} may drop at most {bound:g} below the champion's",
        "max_rise": f"{metric} may rise at most {bound:g} above the champion's",
    }[rule]


def check_gate(gate: Gate, challenger: dict[str, float], champion: dict[str, float] | None) -> GateResult | None:
    """One gate's verdict; None when it compares with a champion and there is none."""
    rule, bound = _bound(gate)
    value = challenger[gate.metric]
    base = None if champion is None else champion[gate.metric]
    if rule in ("max_drop", "max_rise") and base is None:
        return None
    if math.isnan(value) or (base is not None and math.isnan(base)):
        whose = "the challenger's" if math.isnan(value) else "the champion's"
        return GateResult(gate.metric, rule, bound, value, base, False, f"{whose} {gate.metric} is not a number")
    # The detail states what holds: `0.51 is at least 0.45` on a pass, `0.24 is below 0.45` on a failure.
    if rule == "min":
        passed = value >= bound
        detail = f"{value:.4g} is {'at least' if passed else 'below'} {bound:g}"
    elif rule == "max":
        passed = value <= bound
        detail = f"{value:.4g} is {'at most' if passed else 'above'} {bound:g}"
    else:
        assert base is not None
        worse = base - value if rule == "max_drop" else value - base  # how far it moved the wrong way
        passed = worse <= bound
        if worse == 0:
            detail = f"{value:.4g} equals the champion's"
        elif worse > 0:
            moved = "dropped" if rule == "max_drop" else "rose"
            detail = (
                f"{moved} {worse:.4g} from the champion's {base:.4g}, {'within' if passed else 'more than'} {bound:g}"
            )
        else:
            moved = "rose" if rule == "max_drop" else "dropped"
            detail = f"{moved} {-worse:.4g} from the champion's {base:.4g}"
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
            notes.append(
                f"The gate '{rule_sentence(gate.metric, *_bound(gate))}' did not apply: there is no champion "
                "to compare with yet."
            )
        elif not absolute_enforced and result.rule not in RELATIVE_RULES:
            results.append(replace(result, enforced=False))
        else:
            results.append(result)
    if not absolute_enforced and any(not result.enforced for result in results):
        notes.append(
            "The absolute gates (at least, at most) are advisory here: a smoke model trained on a sample is not "
            "held to production bounds; the relative gates decide."
        )
    passed = all(result.passed for result in results if result.enforced)
    if champion is None and first_model == "block":
        passed = False
        notes.append(
            "There is no champion yet and evaluate.first_model is block: a person promotes the first model "
            "(or set first_model: allow)."
        )
    return results, passed, notes


def _bound(gate: Gate) -> tuple[str, float]:
    return next((k, v) for k in ("min", "max", "max_drop", "max_rise") if (v := getattr(gate, k)) is not None)


def _headline(report: GateReport) -> str:
    model, version = report.model, report.challenger_version
    if report.passed and report.champion_version is None:
        return f"## Gate passed: {model} version {version} may become the first @{report.champion_alias}"
    if report.passed:
        return f"## Gate passed: {model} version {version} may replace version {report.champion_version}"
    if report.champion_version is None:
        return f"## Gate failed: {model} version {version} may not become @{report.champion_alias}"
    return (
        f"## Gate failed: {model} version {version} may not replace version {report.champion_version}, "
        f"which stays @{report.champion_alias}"
    )


def render_gate_markdown(report: GateReport) -> str:
    """The report for people (CI step summary, pull request): sentences, and a legend per table."""
    challenger = f"@{report.challenger_alias} (version {report.challenger_version})"
    models = f"Challenger {challenger}, " + (
        f"champion @{report.champion_alias} (version {report.champion_version})"
        if report.champion_version
        else "no champion yet"
    )
    on = f" on the `{report.dataset}` dataset" if report.dataset else ""
    rows = f" ({report.rows:,} rows)" if report.rows is not None else ""
    scored = "both models" if report.champion_version else "the challenger"
    failed = sum(not result.passed for result in report.results)
    count = len(report.results)
    summary = (
        f"{failed} of {count} gate{'s' if count != 1 else ''} failed."
        if failed
        else f"All {count} gates passed."
        if count > 1
        else "Its one gate passed."
        if count
        else "No gate applied."
    )
    lines = [
        _headline(report),
        "",
        f"{models}: {scored} scored{on}{rows}. {summary}",
        "",
        "| gate | challenger | champion | verdict |",
        "| --- | --- | --- | --- |",
    ]
    for result in report.results:
        champion_value = "" if result.champion is None else f"{result.champion:.4g}"
        verdict = f"passed: {result.detail}" if result.passed else f"**failed**: {result.detail}"
        if not result.enforced:
            verdict = f"advisory, {'passed' if result.passed else 'failed'}: {result.detail}"
        lines.append(
            f"| {rule_sentence(result.metric, result.rule, result.bound)} | {result.challenger:.4g} "
            f"| {champion_value} | {verdict} |"
        )
    lines += [
        "",
        "*gate*: a rule of `evaluate.gates`; *challenger*, *champion*: the rule's metric for each model"
        f"{on}; *verdict*: whether the challenger meets the rule, and why.",
        "",
        "| metric | challenger | champion | better |",
        "| --- | --- | --- | --- |",
    ]
    for name, value in report.challenger_metrics.items():
        base = "" if report.champion_metrics is None else f"{report.champion_metrics[name]:.4g}"
        lines.append(f"| {name} | {value:.4g} | {base} | {'higher' if metric_is_higher_better(name) else 'lower'} |")
    lines += [
        "",
        "*metric*: each of `evaluate.metrics` and the gates' metrics; *challenger*, *champion*: its value for "
        "each model (blank: no champion); *better*: which direction is the better model.",
    ]
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
