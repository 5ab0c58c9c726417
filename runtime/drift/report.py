"""HTML drift report: the verdict, a table of per-feature results, and for each feature a
histogram of reference vs current (matplotlib PNGs embedded, so the file stands alone).

Both the text table (`check.render_text`) and the HTML one come with a legend of their columns
(`TEXT_LEGEND`, `text_legend`): what each number is and which way is worse.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from mlc.runtime.drift.check import Comparison, DriftResult, FeatureResult

MAX_LEVELS_SHOWN = 30

# The text table's columns (`check.render_text`), each with what it holds, in table order.
TEXT_LEGEND: tuple[tuple[str, str], ...] = (
    ("feature", "a feature of the data contract"),
    ("kind", "numeric (compared on the reference's quantile bins) or categorical (on its levels)"),
    ("method", "the test that decides: ks (Kolmogorov-Smirnov), chi2 (chi-square) or psi"),
    ("statistic", "that test's statistic: the KS distance (0 to 1), the chi-square value, or the PSI"),
    (
        "p-value",
        "how likely a difference this large is by chance alone (small means a real change); compared with a "
        "cutoff corrected for testing many features at once",
    ),
    ("psi", "population stability index: how far the shares per bin or level moved (0.1 is small, 0.2 large)"),
    ("null Δ", "change in the share of missing values, current minus reference (+0.05: 5 points more nulls)"),
    ("drifted", "YES when the test is significant and the PSI reaches its floor (for psi: its threshold)"),
)


def text_legend() -> str:
    """The legend printed under the text table: one line per column."""
    width = max(len(name) for name, _ in TEXT_LEGEND)
    return "\n".join(["columns:", *(f"  {name:<{width}}  {meaning}" for name, meaning in TEXT_LEGEND)])


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


def render_html(result: DriftResult) -> str:
    """The whole report as one HTML document."""
    verdict = "Drift detected" if result.drifted else "No drift"
    rows = []
    for r in result.features:
        style = ' class="drift"' if r.drifted else ""
        rows.append(
            f"<tr{style}><td>{html.escape(r.feature)}</td><td>{r.kind}</td><td>{r.method}</td>"
            f"<td>{_fmt(r.statistic)}</td><td>{_fmt(r.p_value)}</td><td>{_fmt(r.threshold)}</td>"
            f"<td>{_fmt(r.psi)}</td><td>{_fmt(r.null_rate_reference)} → "
            f"{_fmt(r.null_rate_current)}</td><td>{'yes' if r.drifted else 'no'}</td>"
            f"<td>{html.escape(r.note or ', '.join(r.unseen_categories[:5]))}</td></tr>"
        )
    figures = [
        f'<figure><img alt="{html.escape(r.feature)}" src="data:image/png;base64,'
        f'{_figure_png(result.comparisons[r.feature], r)}"></figure>'
        for r in sorted(result.features, key=lambda r: (not r.drifted, r.feature))
        if r.note is None
    ]
    html_legend = (
        *TEXT_LEGEND[:5],
        ("threshold", "the p-value cutoff of this run after the correction for many features (psi: the PSI one)"),
        ("PSI", TEXT_LEGEND[5][1]),
        ("null rate ref → cur", "the share of missing values in the reference and in the current data"),
        TEXT_LEGEND[7],
        ("note / unseen", "why a feature was not tested, or categories the reference never had"),
    )
    legend = "".join(f"<dt>{html.escape(name)}</dt><dd>{html.escape(text)}</dd>" for name, text in html_legend)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Drift report: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}tr.drift{{background:#fdd}}
figure{{display:inline-block;margin:4px}}</style></head><body>
<h1>{verdict}</h1>
<p>{result.drifted_features} of {result.features_tested} features drifted
(share {result.drifted_share:.2f}, threshold {result.share_threshold:.2f});
method {result.method}, false discovery rate {result.fdr};
{result.rows_current} current rows vs {result.rows_reference} reference rows.</p>
<table><tr><th>feature</th><th>kind</th><th>method</th><th>statistic</th><th>p-value</th>
<th>threshold</th><th>PSI</th><th>null rate ref → cur</th><th>drifted</th><th>note / unseen</th>
</tr>
{chr(10).join(rows)}
</table>
<dl>{legend}</dl>
{chr(10).join(figures)}
</body></html>
"""


def write_report(result: DriftResult, path: str | Path) -> None:
    """Write the HTML report to `path`."""
    Path(path).write_text(render_html(result), encoding="utf-8")
