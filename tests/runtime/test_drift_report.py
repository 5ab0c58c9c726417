"""The HTML report: verdict, table and one reference-vs-current histogram per feature; a legend
for every column of the HTML and the text tables."""

from __future__ import annotations

import base64
import html
import re

from click.testing import CliRunner

from mlc.runtime.cli import main
from mlc.runtime.drift.check import LEGEND
from mlc.runtime.drift.profile import build_profile, write_profile


def test_report_has_verdict_table_and_a_png_per_feature(tmp_path, write_parquet, columns):
    profile = tmp_path / "p.json"
    write_profile(build_profile(write_parquet(columns(3000, seed=1))), profile)
    report = tmp_path / "drift.html"
    data = write_parquet(columns(1000, seed=2, shift=1.0, shifted=("x0", "x1", "x2"), new_level=True))
    result = CliRunner().invoke(
        main, ["drift", "--profile", str(profile), "--data", str(data), "--report", str(report)]
    )
    assert result.exit_code == 1, result.output
    page = report.read_text()
    assert "<h1>Drift detected</h1>" in page
    assert page.count('<tr class="drift">') == 4  # x0, x1, x2 and c0 (new level)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 5
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "brand-new" in page
    # Every column of the HTML table is explained under it.
    headers = re.findall(r"<th>([^<]+)</th>", page)
    explained = re.findall(r"<dt>([^<]+)</dt>", page)
    assert [html.unescape(h) for h in headers] == [html.unescape(e) for e in explained]

    # And every column of the text table, under it, in the table's order.
    header = result.output.splitlines()[0]
    legend = result.output.split("\nlegend:\n", 1)[1].splitlines()
    names = [name for name, _ in LEGEND]
    assert [name for name in names if name in header] == names
    assert [line[2:11].strip() for line in legend[: len(names)]] == names
    assert "missing values" in dict(LEGEND)["null Δ"]
