"""The JSON Schema of mlproject.yaml, generated from the models (editors validate while typing).

`environments.<name>` overlays are partial specs: the same sections with nothing required and
`null` allowed (it deletes a key from the base), so an editor flags a typo inside an overlay too.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from mlc.compiler.load.spec import MLProject

SCHEMA_ID = "https://mlc.dev/schemas/v1/mlproject.schema.json"
_NOT_IN_OVERLAY = ("apiVersion", "kind", "environments")


def _partial(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of an object schema with nothing required and every property nullable."""
    partial = copy.deepcopy(schema)
    partial.pop("required", None)
    for name, prop in list(partial.get("properties", {}).items()):
        partial["properties"][name] = {"anyOf": [_retarget(prop), {"type": "null"}]}
    return partial


def _retarget(node: Any) -> Any:
    """Point `$ref`s at the partial copies of the definitions."""
    if isinstance(node, dict):
        return {k: (_partial_ref(v) if k == "$ref" else _retarget(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_retarget(v) for v in node]
    return node


def _partial_ref(ref: str) -> str:
    return ref.replace("#/$defs/", "#/$defs/Partial")


def build_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) for mlproject.yaml."""
    schema = MLProject.model_json_schema(by_alias=True, mode="validation")
    defs = schema.setdefault("$defs", {})
    for name, definition in list(defs.items()):
        defs[f"Partial{name}"] = _partial(definition)
    overlay = _partial({k: v for k, v in schema.items() if k not in ("$defs", "title", "description")})
    for key in _NOT_IN_OVERLAY:
        overlay["properties"].pop(key, None)
    overlay["title"] = "Environment overlay"
    overlay["description"] = "Deep-merged over the base spec; null deletes a key."
    defs["EnvironmentOverlay"] = overlay
    schema["properties"]["environments"] = {
        "type": "object",
        "description": "overlays deep-merged over the base, one output folder each",
        "propertyNames": {"pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "additionalProperties": {"$ref": "#/$defs/EnvironmentOverlay"},
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def json_schema_text() -> str:
    """The schema as the exact text committed at schemas/mlproject.schema.json."""
    return json.dumps(build_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
