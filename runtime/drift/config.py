"""Drift settings: what the drift check takes from the runtime config, and its defaults.

The runtime reads only the runtime config (`mlc.runtime.config`); every default here is the
contract's (`mlc.runtime.contract`), the same one the compiler fills into the config, so a
check run with a config and one run without it decide alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from mlc.runtime.contract import DRIFT_FDR, DRIFT_PSI_THRESHOLD, DRIFT_SHARE_THRESHOLD, DriftMethod

if TYPE_CHECKING:  # pydantic costs a drift run without a config ~0.1 s of start-up
    from mlc.runtime.contract.config import RuntimeConfig

FeatureKind = Literal["numeric", "categorical"]

# Contract type -> drift kind; string/bytes are free text and are not drift-checked.
CONTRACT_KINDS: dict[str, FeatureKind | None] = {
    "float": "numeric",
    "int": "numeric",
    "bool": "categorical",
    "category": "categorical",
    "string": None,
    "bytes": None,
}


@dataclass(frozen=True)
class DriftConfig:
    """What the drift check needs: features, method, thresholds, and where results go."""

    features: dict[str, FeatureKind] | None = None  # None: infer from the data schema
    method: DriftMethod = "auto"
    psi_threshold: float = DRIFT_PSI_THRESHOLD  # a feature drifts only from this PSI on (whatever the method)
    share_threshold: float = DRIFT_SHARE_THRESHOLD
    fdr: float = DRIFT_FDR
    min_psi: float | None = None  # overrides psi_threshold as the effect-size floor (`drift --min-psi`)
    on_drift: str | None = None
    project: str | None = None
    skipped: tuple[str, ...] = field(default=())
    # Only from the compiler's runtime config (`--config`):
    grouping: dict[str, str] | None = None  # Pushgateway grouping labels besides `job`
    current_uri: str | None = None
    window_seconds: int | None = None  # only current data of this last window
    current_is_log: bool = False  # current_uri is the prediction log (rows by timestamp) rather than files
    predictions_uri: str | None = None  # the prediction log whose window's outputs are checked too
    prediction_psi: float = DRIFT_PSI_THRESHOLD  # the PSI floor of prediction drift (monitor.alerts.prediction_psi)
    model_uri: str | None = None
    tracking_uri: str | None = None
    retrain_cronjob: str | None = None
    namespace: str | None = None

    @property
    def effect_floor(self) -> float:
        """The smallest PSI a feature needs to count as drifted: `threshold.psi` unless overridden."""
        return self.psi_threshold if self.min_psi is None else self.min_psi


def contract_features(config: RuntimeConfig) -> tuple[dict[str, FeatureKind], list[str]]:
    """The drift kind of every checked feature of the contract, and the free-text ones skipped."""
    features: dict[str, FeatureKind] = {}
    skipped: list[str] = []
    for name, feature in (config.contract.features if config.contract else {}).items():
        kind = CONTRACT_KINDS[feature.type]
        if kind is None:
            skipped.append(name)
        else:
            features[name] = kind
    return features, skipped


def drift_config(config: RuntimeConfig) -> DriftConfig:
    """Drift settings from the runtime config; a ConfigError when it has no drift section."""
    drift = config.require_drift()
    features, skipped = contract_features(config)
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
        window_seconds=drift.current.window_seconds,
        current_is_log=drift.current.prediction_log,
        predictions_uri=config.prediction_log.uri if drift.check_predictions and config.prediction_log else None,
        prediction_psi=drift.prediction_psi,
        model_uri=config.champion_uri,
        # As every other command: a pod's MLFLOW_TRACKING_URI (from a Secret) wins over the config.
        tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or config.tracking_uri,
        retrain_cronjob=drift.retrain_cronjob,
        namespace=config.namespace,
    )
