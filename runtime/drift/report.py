"""HTML drift report: the verdict, a table of per-feature results with the reason of each verdict,
the model's predictions the same way when they were checked, a legend of every column, and for
each feature a histogram of reference vs current (matplotlib PNGs embedded, so the file stands
alone)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from mlc.runtime.drift.check import LEGEND, Comparison, DriftResult, FeatureResult

MAX_LEVELS_SHOWN = 30


def _figure_png(comparison: Comparison, result: FeatureResult) -> str:
    """Base64 PNG of reference vs current shares per bin (numeric) or level (categorical)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = comparison.ref_counts / max(comparison.ref_counts.sum(), 1)
    cur = comparison.cur_counts / max(comparison.cur_counts.sum(), 1)
    labels = comparison.labels
    fig, ax = plt.subplots(figsize=(7, 2.8), dpi=80)
    if comparison.kind == "numeric":
        # Reference-quantile bins hold ~equal reference mass, so drift shows as the current
        # bars leaving a flat line; the x axis is the bin, labelled with a few edges.
        x = np.arange(len(ref))
        ax.bar(x, ref, width=1.0, alpha=0.5, label="reference", color="tab:blue")
        ax.step(x, cur, where="mid", label="current", color="tab:orange")
        ticks = x[:: max(len(x) // 6, 1)]
        ax.set_xticks(ticks, [labels[i].split(",")[0].strip("[<>= ") for i in ticks], fontsize=7)
        ax.set_xlabel("reference-quantile bin (lower edge)")
    else:
        order = np.argsort(-(ref + cur), kind="stable")[:MAX_LEVELS_SHOWN]
        x = np.arange(len(order))
        ax.bar(x - 0.2, ref[order], width=0.4, label="reference", color="tab:blue")
        ax.bar(x + 0.2, cur[order], width=0.4, label="current", color="tab:orange")
        ax.set_xticks(x, [labels[i][:12] for i in order], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share")
    verdict = "DRIFT" if result.drifted else "no drift"
    ax.set_title(f"{comparison.name}: {verdict}", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _rows(result: DriftResult) -> list[str]:
    rows = []
    for r in result.features:
        style = ' class="drift"' if r.drifted else ""
        rows.append(
            f"<tr{style}><td>{html.escape(r.feature)}</td><td>{r.kind}</td><td>{r.method}</td>"
            f"<td>{_fmt(r.statistic)}</td><td>{_fmt(r.p_value)}</td><td>{_fmt(r.threshold)}</td>"
            f"<td>{_fmt(r.psi)}</td><td>{_fmt(r.null_rate_reference)} → "
            f"{_fmt(r.null_rate_current)}</td><td>{'yes' if r.drifted else 'no'}</td>"
            f"<td>{html.escape(r.reason)}</td>"
            f"<td>{html.escape(', '.join(r.unseen_categories[:5]))}</td></tr>"
        )
    return rows


# The HTML table's columns in order; each is explained under the table, in the same order.
_COLUMNS = (
    "feature",
    "kind",
    "method",
    "statistic",
    "p-value",
    "threshold",
    "psi",
    "null rate ref → cur",
    "drifted",
    "why",
    "unseen",
)
_HEADER = "<tr>" + "".join(f"<th>{html.escape(name)}</th>" for name in _COLUMNS) + "</tr>"
_MEANINGS = dict(LEGEND) | {
    "threshold": "the cutoff the deciding value was held to: the false-discovery p-value cutoff (ks, chi2) or "
    "the PSI the feature had to exceed (psi)",
    "null rate ref → cur": "the share of missing values in the reference and in the current data",
    "unseen": "categories of current data the reference never had",
}


def _figures(result: DriftResult) -> list[str]:
    return [
        f'<figure><img alt="{html.escape(r.feature)}" src="data:image/png;base64,'
        f'{_figure_png(result.comparisons[r.feature], r)}"></figure>'
        for r in sorted(result.features, key=lambda r: (not r.drifted, r.feature))
        if r.note is None
    ]


def render_html(result: DriftResult, predictions: DriftResult | None = None) -> str:
    """The whole report as one HTML document."""
    verdict = "Drift detected" if result.drifted else "No drift"
    legend = "".join(f"<dt>{html.escape(name)}</dt><dd>{html.escape(_MEANINGS[name])}</dd>" for name in _COLUMNS)
    prediction_section = ""
    if predictions is not None:
        outcome = "drifted" if predictions.drifted else "did not drift"
        prediction_section = f"""<h2>Predictions {outcome}</h2>
<p>{predictions.drifted_features} of {predictions.features_tested} outputs drifted;
{predictions.rows_current} logged rows vs {predictions.rows_reference} rows of the eval set at training
(PSI at least {predictions.min_psi:g}, and above what that many rows reach by chance).</p>
<table>{_HEADER}
{chr(10).join(_rows(predictions))}
</table>
{chr(10).join(_figures(predictions))}"""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Drift report: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}tr.drift{{background:#fdd}}
figure{{display:inline-block;margin:4px}}dt{{font-weight:bold}}</style></head><body>
<h1>{verdict}</h1>
<p>{result.drifted_features} of {result.features_tested} features drifted
(share {result.drifted_share:.2f}, threshold {result.share_threshold:.2f});
a feature drifts when its PSI reaches {result.min_psi:g} and the change is more than noise
(method {result.method}, false discovery rate {result.fdr});
{result.rows_current} current rows vs {result.rows_reference} reference rows.</p>
<table>{_HEADER}
{chr(10).join(_rows(result))}
</table>
{prediction_section}
<h2>Legend</h2>
<dl>{legend}</dl>
{chr(10).join(_figures(result))}
</body></html>
"""


def write_report(result: DriftResult, path: str | Path, predictions: DriftResult | None = None) -> None:
    """Write the HTML report to `path`."""
    Path(path).write_text(render_html(result, predictions), encoding="utf-8")
