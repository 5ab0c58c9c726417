"""Drift settings, from `mlproject.yaml` or from the compiler's runtime config.

`read_spec` takes only `metadata.name`, `data.contract.features`, `monitor.drift.method`,
`monitor.drift.threshold` and `monitor.drift.on_drift`. `read_runtime_config` maps the
runtime config (the one reader is `mlc.runtime.config`) to drift settings: contract, drift,
project, namespace, tracking URI, registered model and its champion alias, and the
Pushgateway grouping labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

FeatureKind = Literal["numeric", "categorical"]
Method = Literal["auto", "psi", "ks", "chi2"]

METHODS: tuple[str, ...] = ("auto", "psi", "ks", "chi2")
# Contract type -> drift kind; string/bytes are free text and are not drift-checked.
CONTRACT_KINDS: dict[str, FeatureKind | None] = {
    "float": "numeric",
    "int": "numeric",
    "bool": "categorical",
    "category": "categorical",
    "string": None,
    "bytes": None,
}


class SpecError(Exception):
    """An `mlproject.yaml` that cannot be used for drift checks."""


@dataclass(frozen=True)
class DriftConfig:
    """What the drift check needs from the project spec."""

    features: dict[str, FeatureKind] | None = None  # None: infer from the data schema
    method: Method = "auto"
    psi_threshold: float = 0.2
    share_threshold: float = 0.5
    fdr: float = 0.05
    min_psi: float = 0.01  # effect-size floor for p-value decisions (see check.apply_fdr)
    on_drift: str | None = None
    project: str | None = None
    skipped: tuple[str, ...] = field(default=())
    # Only from the compiler's runtime config (`--config`):
    grouping: dict[str, str] | None = None  # Pushgateway grouping labels besides `job`
    current_uri: str | None = None
    model_uri: str | None = None
    tracking_uri: str | None = None
    retrain_cronjob: str | None = None
    namespace: str | None = None


def _contract_entries(features: object) -> list[tuple[str, str]]:
    """Accept `[{name, type}]`, `{name: type}` or `{name: {type: ...}}` contract shapes."""
    if isinstance(features, dict):
        return [
            (str(name), str(spec.get("type") if isinstance(spec, dict) else spec)) for name, spec in features.items()
        ]
    if isinstance(features, list):
        entries = []
        for item in features:
            if not isinstance(item, dict) or "name" not in item or "type" not in item:
                raise SpecError("data.contract.features entries need `name` and `type`")
            entries.append((str(item["name"]), str(item["type"])))
        return entries
    raise SpecError("data.contract.features must be a list or a mapping")


def _features(contract_features: object) -> tuple[dict[str, FeatureKind], list[str]]:
    features: dict[str, FeatureKind] = {}
    skipped: list[str] = []
    for name, type_ in _contract_entries(contract_features or []):
        if type_ not in CONTRACT_KINDS:
            raise SpecError(f"feature {name!r} has unknown type {type_!r}")
        kind = CONTRACT_KINDS[type_]
        if kind is None:
            skipped.append(name)
        else:
            features[name] = kind
    return features, skipped


def read_runtime_config(path: str | Path) -> DriftConfig:
    """Drift settings from the compiler's runtime config (read by `mlc.runtime.config`)."""
    from mlc.runtime.config import ConfigError, load_runtime_config

    try:
        config = load_runtime_config(Path(path))
    except ConfigError as exc:
        raise SpecError(str(exc)) from None
    drift = config.drift
    if drift is None:
        raise SpecError(f"runtime config {path} has no drift section (monitor.drift)")
    contract = config.contract
    features, skipped = _features({n: f.type for n, f in contract.features.items()} if contract else {})
    return DriftConfig(
        features=features or None,
        method=drift.method,
        psi_threshold=drift.threshold.psi,
        share_threshold=drift.threshold.share,
        on_drift=drift.on_drift,
        project=config.project,
        skipped=tuple(skipped),
        grouping=dict(config.metrics.grouping) or None,
        current_uri=drift.current.uri,
        model_uri=f"models:/{config.registered_model}@{config.aliases.champion}",
        tracking_uri=config.tracking_uri,
        retrain_cronjob=drift.retrain_cronjob,
        namespace=config.namespace,
    )


def _method(method: object) -> Method:
    if method not in METHODS:
        raise SpecError(f"drift method must be one of {', '.join(METHODS)}")
    return method  # type: ignore[return-value]


def read_spec(path: str | Path) -> DriftConfig:
    """Read the drift settings of an `mlproject.yaml` (see module docstring for the keys)."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"spec {path} is not valid YAML") from exc
    if not isinstance(doc, dict):
        raise SpecError(f"spec {path} is not a mapping")
    contract = ((doc.get("data") or {}).get("contract") or {}).get("features")
    features, skipped = _features(contract)
    drift = (doc.get("monitor") or {}).get("drift") or {}
    method = drift.get("method", "auto")
    if method not in METHODS:
        raise SpecError(f"monitor.drift.method must be one of {', '.join(METHODS)}")
    threshold = drift.get("threshold") or {}
    try:
        psi = float(threshold.get("psi", 0.2))
        share = float(threshold.get("share", 0.5))
    except (TypeError, ValueError) as exc:
        raise SpecError("monitor.drift.threshold.psi and .share must be numbers") from exc
    return DriftConfig(
        features=features or None,
        method=method,
        psi_threshold=psi,
        share_threshold=share,
        on_drift=drift.get("on_drift"),
        project=(doc.get("metadata") or {}).get("name"),
        skipped=tuple(skipped),
    )
