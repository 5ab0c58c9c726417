"""The drift check: current data against a reference profile, producing a result as data.

Per numeric feature: PSI on the reference bins, KS distance on the bin grid (the true KS
distance is within `ks_bound` above it) with its asymptotic p-value, and the null-rate
change. Per categorical feature: PSI and a chi-square test of independence on the 2xK table
over the union of levels (levels unseen in the reference get their own columns, sparse
levels are pooled).

Decisions (`method` from the spec). A feature drifts when its change is large enough (PSI at
least the spec's `threshold.psi`, `DriftConfig.effect_floor`) and more than noise:

- ``auto``: KS for numeric, chi-square for categorical; ``ks``: the same (KS needs an
  order, so categorical features use chi-square); ``chi2``: chi-square for both (numeric on
  the reference bins). The p-values of all tested features go through Benjamini-Hochberg at
  false discovery rate `fdr`; `threshold` in the result is that run's p-value cutoff. A
  significant feature drifts only if its PSI also reaches the floor (see `apply_fdr`).
- ``psi``: a feature drifts when PSI exceeds max(the floor, the PSI null quantile at
  1 - fdr/m for this n_ref, n_cur and bin count), so small samples of an unchanged
  distribution do not fire (see `statistics.psi_null_threshold`).

Every feature's result says why it was or was not flagged (`FeatureResult.reason`), in the
report's words (`LEGEND`). The dataset drifts when the share of drifted features reaches
`share_threshold`. Current data is a folder or glob of files, or a window of the prediction
log (`data.open_prediction_log`); the model's predictions in that window are checked the same
way against the distribution training logged (`run_prediction_check`, method psi).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from mlc.runtime.contract import LOG_INPUTS, LOG_OUTPUTS
from mlc.runtime.drift import statistics as st
from mlc.runtime.drift.config import DriftConfig
from mlc.runtime.drift.data import DataError, Source, feed_batches, open_dataset, open_prediction_log
from mlc.runtime.drift.profile import (
    MAX_DENSE_SPAN,
    MAX_TABLE_SPAN,
    MissingCounts,
    ProfileError,
    bin_counts,
    bin_table,
    category_counts,
    check_format,
    grid_keys,
    numeric_values,
    table_bin_counts,
)

DRIFT_WINDOW_SECONDS = 86400  # the prediction window when the config gives none (`monitor.drift.current.window`)
OTHER = "__other__"
OTHER_UNSEEN = "__other_unseen__"
# Unseen levels kept individually in current data; the rest are counted together.
MAX_UNSEEN_LEVELS = 1000


@dataclass
class Comparison:
    """Reference and current counts of one feature on a shared set of bins or levels."""

    name: str
    kind: str
    labels: list[str]
    ref_counts: np.ndarray
    cur_counts: np.ndarray
    ref_missing: int
    ref_rows: int
    cur_missing: int
    cur_rows: int
    unseen: list[str] = field(default_factory=list)


@dataclass
class FeatureResult:
    """Outcome for one feature; `statistic`/`p_value` belong to `method`."""

    feature: str
    kind: str
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool
    psi: float | None
    psi_threshold: float | None
    ks_distance: float | None
    ks_bound: float | None
    chi2: float | None
    chi2_dof: int | None
    null_rate_reference: float
    null_rate_current: float
    n_reference: int
    n_current: int
    unseen_categories: list[str]
    note: str | None = None
    reason: str = ""  # why it was or was not flagged, in words (`explain`)


@dataclass
class DriftResult:
    """Dataset verdict plus per-feature results (and the counts, for the report)."""

    drifted: bool
    drifted_share: float
    drifted_features: int
    features_tested: int
    share_threshold: float
    method: str
    fdr: float
    min_psi: float  # the effect-size floor applied (the spec's threshold.psi unless overridden)
    rows_reference: int
    rows_current: int
    features: list[FeatureResult]
    comparisons: dict[str, Comparison]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN/inf become None); the raw counts are left out."""
        return _clean(
            {
                "dataset": {
                    "drifted": self.drifted,
                    "drifted_share": self.drifted_share,
                    "drifted_features": self.drifted_features,
                    "features_tested": self.features_tested,
                    "share_threshold": self.share_threshold,
                    "method": self.method,
                    "fdr": self.fdr,
                    "min_psi": self.min_psi,
                    "rows_reference": self.rows_reference,
                    "rows_current": self.rows_current,
                },
                "features": {f.feature: asdict(f) for f in self.features},
            }
        )


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------- current data (I/O edge)
@dataclass
class _NumericCurrent:
    edge_keys: np.ndarray
    resolution_bits: int
    missing: MissingCounts = field(default_factory=MissingCounts)
    counts: np.ndarray | None = None
    table: np.ndarray | None = None  # the bin of every key between the edges (`bin_table`)
    tally: np.ndarray | None = None  # the count of every key between the edges (`MAX_DENSE_SPAN`)

    def add(self, array: Any) -> None:
        values = numeric_values(array, self.missing)
        keys = grid_keys(values, self.resolution_bits)
        span = int(self.edge_keys[-1] - self.edge_keys[0]) if len(self.edge_keys) else None
        if span is not None and span <= MAX_DENSE_SPAN:
            # Count every key between the edges (bins come from the sums at the end): one
            # bincount a batch, no per-value lookup.
            low = int(self.edge_keys[0]) - 1
            np.clip(keys, low, low + span + 1, out=keys)
            keys -= low
            tally = np.bincount(keys, minlength=span + 2)
            self.tally = tally if self.tally is None else self.tally + tally
            return
        # No reference values (one bin, everything unseen), or keys too fine for a table.
        if span is None or span > MAX_TABLE_SPAN:
            binned = bin_counts(self.edge_keys, keys.astype(np.int32))  # int32 sorts faster
        else:
            if self.table is None:
                self.table = bin_table(self.edge_keys)
            binned = table_bin_counts(self.table, int(self.edge_keys[0]), keys)
        self.counts = binned if self.counts is None else self.counts + binned

    def binned(self) -> np.ndarray | None:
        """Counts per bin [underflow, bins..., overflow], as `profile.bin_counts` numbers them."""
        if self.tally is None:
            return self.counts
        starts = np.concatenate([[0], self.edge_keys - self.edge_keys[0] + 1])
        return np.add.reduceat(self.tally, starts).astype(np.int64)


@dataclass
class _CategoryCurrent:
    known: frozenset[str]
    missing: MissingCounts = field(default_factory=MissingCounts)
    categories: dict[str, int] = field(default_factory=dict)
    unseen: int = 0

    def add(self, array: Any) -> None:
        for level, n in category_counts(array, self.missing).items():
            if level in self.categories or level in self.known:
                self.categories[level] = self.categories.get(level, 0) + n
            elif self.unseen < MAX_UNSEEN_LEVELS:
                self.categories[level] = n
                self.unseen += 1
            else:  # bound memory when an ID-like column floods in new levels
                self.categories[OTHER_UNSEEN] = self.categories.get(OTHER_UNSEEN, 0) + n


def summarize_current(profile: Mapping[str, Any], source: Source, features: list[str]) -> tuple[int, dict[str, Any]]:
    """Read current data in batches into per-feature counts on the profile's bins/levels."""
    settings = profile["settings"]
    summaries: dict[str, _NumericCurrent | _CategoryCurrent] = {}
    for name in features:
        entry = profile["features"][name]
        if entry["kind"] == "numeric":
            summaries[name] = _NumericCurrent(
                np.asarray(entry["bins"]["edge_keys"], dtype=np.int64), int(settings["resolution_bits"])
            )
        else:
            summaries[name] = _CategoryCurrent(frozenset(entry["categories"]))
    rows = feed_batches(source, summaries)
    if rows == 0:
        where = f"{source.files.uri} (its last window)" if source.since is not None else source.files.uri
        raise DataError(f"current data is empty: {where}")
    return rows, summaries


# ---------------------------------------------------------------- comparisons (pure)
def numeric_comparison(name: str, entry: Mapping[str, Any], current: _NumericCurrent) -> Comparison:
    """Reference vs current counts on the reference bins [underflow, bins..., overflow]."""
    edges = [_short(edge) for edge in entry["bins"]["edges"]]
    labels = ["< " + edges[0]] if edges else []
    labels += [f"[{lo}, {hi})" for lo, hi in pairwise(edges)]
    labels += [">= " + edges[-1]] if edges else []
    ref = np.asarray(entry["bins"]["counts"], dtype=np.int64)
    binned = current.binned()
    cur = binned if binned is not None else np.zeros(len(ref), dtype=np.int64)
    if len(ref) == 0:  # reference had no non-missing values: everything is "unseen"
        ref, cur, labels = np.zeros(1, np.int64), np.array([cur.sum()]), ["all"]
    return Comparison(
        name=name,
        kind="numeric",
        labels=labels,
        ref_counts=ref,
        cur_counts=cur,
        ref_missing=int(entry["null"]) + int(entry["nan"]),
        ref_rows=int(entry["count"]),
        cur_missing=current.missing.null + current.missing.nan,
        cur_rows=current.missing.count,
    )


def _short(edge: float | str) -> str:
    return edge if isinstance(edge, str) else format(edge, ".4g")


def categorical_comparison(name: str, entry: Mapping[str, Any], current: _CategoryCurrent) -> Comparison:
    """Counts over the union of levels: reference levels, `other`, then unseen levels."""
    ref_levels = dict(entry["categories"])
    labels = sorted(ref_levels)
    ref = [int(ref_levels[level]) for level in labels]
    cur = [current.categories.get(level, 0) for level in labels]
    extra = sorted(set(current.categories) - set(ref_levels))
    unseen: list[str] = []
    if int(entry["other"]) > 0:
        # The reference pooled its rare levels, so a level missing from its list may be one
        # of them: compare against the pooled bucket rather than calling it unseen.
        labels.append(OTHER)
        ref.append(int(entry["other"]))
        cur.append(sum(current.categories[level] for level in extra))
    else:
        unseen = extra
        labels += extra
        ref += [0] * len(extra)
        cur += [current.categories[level] for level in extra]
    return Comparison(
        name=name,
        kind="categorical",
        labels=labels,
        ref_counts=np.asarray(ref, dtype=np.int64),
        cur_counts=np.asarray(cur, dtype=np.int64),
        ref_missing=int(entry["null"]),
        ref_rows=int(entry["count"]),
        cur_missing=current.missing.null,
        cur_rows=current.missing.count,
        unseen=unseen,
    )


def decision_method(method: str, kind: str) -> str:
    """Which test decides for a feature kind under the configured method."""
    if method == "psi":
        return "psi"
    if method == "chi2" or kind == "categorical":
        return "chi2"
    return "ks"


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else math.nan


def evaluate(comparison: Comparison, method: str, psi_floor: float, psi_alpha: float) -> FeatureResult:
    """All statistics of one feature, computed once; BH decisions are applied afterwards."""
    ref, cur = comparison.ref_counts, comparison.cur_counts
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    chosen = decision_method(method, comparison.kind)
    base = {
        "feature": comparison.name,
        "kind": comparison.kind,
        "method": chosen,
        "null_rate_reference": _rate(comparison.ref_missing, comparison.ref_rows),
        "null_rate_current": _rate(comparison.cur_missing, comparison.cur_rows),
        "n_reference": n_ref,
        "n_current": n_cur,
        "unseen_categories": comparison.unseen,
    }
    if n_ref == 0 or n_cur == 0:
        side = "reference" if n_ref == 0 else "current data"
        return FeatureResult(
            **base,
            statistic=None,
            p_value=None,
            threshold=None,
            drifted=False,
            psi=None,
            psi_threshold=None,
            ks_distance=None,
            ks_bound=None,
            chi2=None,
            chi2_dof=None,
            note=f"not tested: no non-missing values in {side}",
        )
    occupied = int(((ref + cur) > 0).sum())
    psi_value = st.psi(ref, cur)
    psi_threshold = max(psi_floor, st.psi_null_threshold(n_ref, n_cur, occupied, psi_alpha))
    ks = st.ks_binned(ref, cur) if comparison.kind == "numeric" else None
    chi2 = st.chi2_independence(ref, cur) if chosen == "chi2" else None
    if chosen == "psi":
        statistic, p_value, threshold = psi_value, None, psi_threshold
    elif chosen == "ks":
        statistic, p_value, threshold = ks.statistic, ks.p_value, None
    else:
        statistic, p_value, threshold = chi2.statistic, chi2.p_value, None
    return FeatureResult(
        **base,
        statistic=statistic,
        p_value=p_value,
        threshold=threshold,
        drifted=chosen == "psi" and psi_value > psi_threshold,
        psi=psi_value,
        psi_threshold=psi_threshold,
        ks_distance=ks.statistic if ks else None,
        ks_bound=ks.bound if ks else None,
        chi2=chi2.statistic if chi2 else None,
        chi2_dof=chi2.dof if chi2 else None,
    )


def apply_fdr(results: list[FeatureResult], fdr: float, min_psi: float) -> None:
    """Decide p-value features together with Benjamini-Hochberg; record the p cutoff.

    A rejected feature also needs PSI >= `min_psi`: with a million rows even a trivial
    change (KS distance 0.003) is "significant"; the floor keeps such changes from alerting
    while staying far below the noise PSI of small samples, where BH alone decides.
    """
    tested = [r for r in results if r.p_value is not None]
    if not tested:
        return
    rejected = st.benjamini_hochberg([r.p_value for r in tested], fdr)
    cutoff = fdr * max(sum(rejected), 1) / len(tested)
    for result, reject in zip(tested, rejected, strict=True):
        result.drifted = bool(reject) and result.psi >= min_psi
        result.threshold = cutoff


def compare(
    profile: Mapping[str, Any], rows_current: int, summaries: Mapping[str, Any], config: DriftConfig
) -> DriftResult:
    """Pure part of the check: counts in, decisions out."""
    comparisons = {
        name: (numeric_comparison if profile["features"][name]["kind"] == "numeric" else categorical_comparison)(
            name, profile["features"][name], summary
        )
        for name, summary in summaries.items()
    }
    testable = [c for c in comparisons.values() if c.ref_counts.sum() and c.cur_counts.sum()]
    psi_alpha = config.fdr / max(len(testable), 1)  # Bonferroni: PSI has no p-values to pool
    floor = config.effect_floor
    results = [evaluate(c, config.method, floor, psi_alpha) for c in comparisons.values()]
    apply_fdr(results, config.fdr, floor)
    for result in results:
        result.reason = explain(result, floor, config.fdr)
    tested = [r for r in results if r.note is None]
    drifted = sum(r.drifted for r in tested)
    share = drifted / len(tested) if tested else 0.0
    return DriftResult(
        drifted=drifted > 0 and share >= config.share_threshold,
        drifted_share=share,
        drifted_features=drifted,
        features_tested=len(tested),
        share_threshold=config.share_threshold,
        method=config.method,
        fdr=config.fdr,
        min_psi=floor,
        rows_reference=int(profile["rows"]),
        rows_current=rows_current,
        features=results,
        comparisons=comparisons,
    )


def select_features(profile: Mapping[str, Any], config: DriftConfig) -> list[str]:
    """Features to check: the contract's (must be in the profile), else all profiled ones."""
    profiled = profile["features"]
    if config.features is None:
        return sorted(profiled)
    missing = sorted(set(config.features) - set(profiled))
    if missing:
        raise ProfileError(f"profile lacks contract features: {', '.join(missing)}")
    for name, kind in config.features.items():
        if profiled[name]["kind"] != kind:
            raise ProfileError(f"feature {name!r} is {kind} in the spec but {profiled[name]['kind']} in the profile")
    return sorted(config.features)


def current_source(data: str | Path | Source, config: DriftConfig, struct: str = LOG_INPUTS) -> Source:
    """Current data: the prediction log's last window (`config.current_is_log`), else the files of
    `data` (with `config.window_seconds`, those written in that last window)."""
    import time

    if isinstance(data, Source):
        return data
    since = time.time() - config.window_seconds if config.window_seconds else None
    if config.current_is_log:
        return open_prediction_log(str(data), since or 0.0, struct)
    return open_dataset(data, since)


def run_check(profile: Mapping[str, Any], data: str | Path | Source, config: DriftConfig) -> DriftResult:
    """Check `data` (Parquet/CSV file, directory, glob or remote URI, or the prediction log's
    window: `current_source`) for drift against `profile`."""
    check_format(profile)
    features = select_features(profile, config)
    rows, summaries = summarize_current(profile, current_source(data, config), features)
    return compare(profile, rows, summaries, config)


def prediction_config(config: DriftConfig) -> DriftConfig:
    """How predictions are checked: PSI over the profiled outputs, the floor
    `monitor.alerts.prediction_psi` raised to the noise level, any drifted output a drift."""
    from dataclasses import replace

    return replace(
        config, features=None, method="psi", psi_threshold=config.prediction_psi, min_psi=None, share_threshold=0.0
    )


def run_prediction_check(profile: Mapping[str, Any], log_uri: str, config: DriftConfig) -> DriftResult:
    """The window's logged predictions against the distribution training logged (`profile`, built
    on the eval set's predictions): each profiled output column the log holds."""
    check_format(profile)
    window = config.window_seconds or DRIFT_WINDOW_SECONDS
    source = current_source(log_uri, replace_log(config, window), LOG_OUTPUTS)
    outputs = sorted(name for name in profile["features"] if name in source.schema.names)
    if not outputs:
        logged, profiled = ", ".join(source.schema.names) or "none", ", ".join(profile["features"])
        raise DataError(f"{log_uri}: the log holds none of the profiled outputs ({profiled}); logged: {logged}")
    rows, summaries = summarize_current(profile, source, outputs)
    return compare(profile, rows, summaries, prediction_config(config))


def replace_log(config: DriftConfig, window_seconds: int) -> DriftConfig:
    """`config` reading its current data from the prediction log's last window."""
    from dataclasses import replace

    return replace(config, current_is_log=True, window_seconds=window_seconds)


def explain(result: FeatureResult, floor: float, fdr: float) -> str:
    """Why a feature was or was not flagged, in one sentence (the report's `why` column)."""
    if result.note is not None:
        return result.note
    psi, rows = result.psi, result.n_current
    assert psi is not None
    big = psi >= floor
    size = f"PSI {psi:.3g} {'reaches' if big else 'below'} {floor:g}"
    if result.method == "psi":
        noise = result.psi_threshold if result.psi_threshold is not None else floor
        if result.drifted:
            beyond = f", beyond the {noise:.3g} that {rows} rows reach by chance" if noise > floor else ""
            return f"{size}{beyond}"
        if not big:
            return f"{size}: too small a change"
        return f"{size}, but {rows} rows cannot tell it from noise: chance alone reaches PSI {noise:.3g}"
    p, cutoff = result.p_value, result.threshold
    test = "KS" if result.method == "ks" else "chi-square"
    if p is None or cutoff is None:
        return size
    evidence = f"{test} p={p:.2g}"
    if result.drifted:
        return f"{size} and the change is real: {evidence} <= {cutoff:.2g} (false discovery rate {fdr:g})"
    if big:
        return f"{size}, but {rows} rows cannot tell it from noise: {evidence}, needs <= {cutoff:.2g}"
    if p <= cutoff:
        return f"{size}: a real but small change ({evidence})"
    return f"{size}: no change beyond noise ({evidence})"


LEGEND = (
    ("feature", "a column of the data contract (or an output of the model, for predictions)"),
    ("kind", "numeric (compared on the reference's quantile bins) or categorical (on its levels)"),
    ("method", "the test that decides: ks (numeric), chi2 (categorical), psi (PSI against its noise level)"),
    ("statistic", "the deciding test's value: KS distance, chi-square, or PSI"),
    ("p-value", "how likely a change this large is by chance alone (ks, chi2); small means real"),
    ("psi", "population stability index of current vs reference shares: 0 same, 0.1 moderate, 0.25+ large"),
    ("null Δ", "change of the share of missing values, current minus reference"),
    (
        "drifted",
        "YES when PSI reaches threshold.psi AND the change is more than noise (p-value within the "
        "false-discovery cutoff; for psi: PSI above what this many rows reach by chance)",
    ),
    ("why", "the reason for the verdict, in words"),
)


def render_text(result: DriftResult, predictions: DriftResult | None = None, legend: bool = True) -> str:
    """A fixed-width table, one row per feature with the reason of its verdict, the dataset
    verdict, the predictions' table and verdict when checked, then the legend of the columns."""
    lines = _table(result)
    verdict = "DRIFT" if result.drifted else "no drift"
    lines.append("")
    lines.append(
        f"dataset: {verdict}: {result.drifted_features}/{result.features_tested} "
        f"features drifted (share {result.drifted_share:.2f}, threshold "
        f"{result.share_threshold:.2f}); {result.rows_current} current rows vs "
        f"{result.rows_reference} reference rows"
    )
    if predictions is not None:
        lines += ["", "predictions:", *_table(predictions), ""]
        lines.append(
            f"predictions: {'DRIFT' if predictions.drifted else 'no drift'}: {predictions.drifted_features}/"
            f"{predictions.features_tested} outputs drifted; {predictions.rows_current} logged rows vs "
            f"{predictions.rows_reference} rows of the eval set at training"
        )
    if legend:
        lines += ["", "legend:", *(f"  {name:<9} {meaning}" for name, meaning in LEGEND)]
    return "\n".join(lines)


def _table(result: DriftResult) -> list[str]:
    header = (
        f"{'feature':<24} {'kind':<11} {'method':<6} {'statistic':>10} {'p-value':>9} {'psi':>8} {'null Δ':>8}"
        "  drifted  why"
    )
    lines = [header, "-" * len(header)]
    for r in result.features:
        null_change = r.null_rate_current - r.null_rate_reference
        lines.append(
            f"{r.feature[:24]:<24} {r.kind:<11} {r.method:<6} {_num(r.statistic):>10} "
            f"{_num(r.p_value, '.2e'):>9} {_num(r.psi):>8} {_num(null_change, '+.4f'):>8}  "
            f"{'YES' if r.drifted else 'no':<7}  {r.reason}"
        )
    return lines


def _num(value: float | None, spec: str = ".4f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)
