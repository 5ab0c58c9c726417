"""What a registry URI could have named: said when `models:/<name>@<alias>` names nothing.

`serve`, `batch`, `fetch-model` and `drift --model` load a model by alias or version; when the
registry has no such model, alias or version, the error lists what there is (the model's
aliases with their versions, its versions, or the registered models), so the next try is right.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient

MAX_LISTED = 20


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "") if names else "none"


def missing_model_sentence(client: MlflowClient, name: str, alias: str | None, version: str | None) -> str | None:
    """`churn has no alias 'champoin'; its aliases: challenger (version 2), champion (version 1)`,
    or None when the registry cannot be asked (the caller keeps MLflow's own message)."""
    from mlflow.exceptions import MlflowException

    try:
        try:
            model = client.get_registered_model(name)
        except MlflowException:
            models = sorted(m.name for m in client.search_registered_models(max_results=200))
            return f"no registered model {name!r}; registered models: {_listed(models)}"
        if alias:
            if alias in (model.aliases or {}):
                return None  # it exists: something else was not found (an artifact), MLflow's message says what
            aliases = sorted(f"{key} (version {value})" for key, value in (model.aliases or {}).items())
            return f"{name} has no alias {alias!r}; its aliases: {_listed(aliases)}"
        versions = sorted(
            (str(v.version) for v in client.search_model_versions(f"name='{name}'", max_results=200)), key=int
        )
        if str(version) in versions:
            return None
        return f"{name} has no version {version}; its versions: {_listed(versions)}"
    except Exception:  # the registry is unreachable or refuses: the first error says so already
        return None
