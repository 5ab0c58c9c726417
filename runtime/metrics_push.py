"""Pushing metrics to a Prometheus Pushgateway: a plain HTTP PUT of the text exposition format.

`PUT <url>/metrics/job/<job>/<label>/<value>...` replaces every metric of that group, so each
run of a check replaces its previous result; the compiled ServiceMonitor scrapes the gateway with
`honorLabels`, so the pushed `job`, `project` and `environment` labels reach the alerts.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping

from mlc.runtime.errors import MlcRuntimeError


class PushError(MlcRuntimeError):
    """The Pushgateway could not be reached or refused the metrics."""


def label_value(value: str) -> str:
    """A label value escaped for the text exposition format."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def gauge_lines(name: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]) -> list[str]:
    """One gauge's HELP, TYPE and sample lines (labels in the order given)."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        body = ",".join(f'{key}="{label_value(text)}"' for key, text in labels.items())
        lines.append(f"{name}{{{body}}} {float(value)!r}" if body else f"{name} {float(value)!r}")
    return lines


def push_url(base_url: str, job: str, grouping: Mapping[str, str]) -> str:
    """Grouping-key URL: the job label, then each grouping label in order."""
    path = "".join(f"/{urllib.parse.quote(k, safe='')}/{urllib.parse.quote(v, safe='')}" for k, v in grouping.items())
    return f"{base_url.rstrip('/')}/metrics/job/{urllib.parse.quote(job, safe='')}{path}"


def push_text(base_url: str, job: str, grouping: Mapping[str, str], text: str, timeout: float = 10.0) -> None:
    """PUT the exposition text, replacing this group's previous push; PushError on failure."""
    request = urllib.request.Request(
        push_url(base_url, job, grouping),
        data=text.encode(),
        method="PUT",
        headers={"Content-Type": "text/plain; version=0.0.4"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise PushError(
            f"pushgateway {base_url} refused metrics: HTTP {exc.code} "
            f"{exc.read().decode(errors='replace').strip()[:200]}"
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PushError(f"cannot push metrics to {base_url}: {reason}") from exc
