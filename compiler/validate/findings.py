"""pydantic's validation errors -> findings that teach: what is wrong, where, and a valid form.

One finding per field (pydantic reports a union's every branch), worded for the spec's author:
"must be an integer, got the string '8'", "unknown key 'trian'; did you mean 'train'?", with a
hint when YAML read a value differently than intended. A secret's value is never echoed.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from mlc.compiler.diagnostics import Finding
from mlc.compiler.load.document import FieldPath
from mlc.compiler.load.spec import Data, Dataset, MLProject
from mlc.compiler.validate.secret_scan import token_kind


def findings_from_pydantic(exc: ValidationError, data: dict[str, Any]) -> Iterator[Finding]:
    grouped: dict[FieldPath, list[dict[str, Any]]] = {}
    for err in exc.errors(include_url=False):
        path = _data_path(err["loc"], data, err["type"])
        grouped.setdefault(path, []).append(err)
    for path, errors in grouped.items():
        yield _finding(path, errors)


def _data_path(loc: tuple[Any, ...], data: Any, kind: str) -> FieldPath:
    """Trim pydantic's loc to the part that names real data (drops union tags like 'str')."""
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            last = i == len(loc) - 1
            if kind in ("missing", "extra_forbidden") and last:
                path.append(part)
            return tuple(path)
        path.append(part)
    return tuple(path)


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        if token_kind(value):
            return "a credential-shaped string (not shown)"
        return f"the string '{value}'" if len(value) <= 60 else "a long string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return type(value).__name__


def _finding(path: FieldPath, errors: list[dict[str, Any]]) -> Finding:
    first = errors[0]
    kind = first["type"]
    value = first.get("input")
    secret = bool(path) and path[0] == "secrets"
    if kind == "missing":
        return Finding(path, "required field is missing", _example_for(path), at_key=False)
    if kind == "extra_forbidden":
        return _unknown_key(path)
    if secret and len(path) == 2 and kind in ("model_type", "dict_type", "model_attributes_type"):
        # Never echo what was written here: it may be the secret itself.
        return Finding(
            path,
            "must be a reference to a secret, not a value; a literal secret is never allowed in mlproject.yaml",
            "e.g. `AWS_ACCESS_KEY_ID: {k8s: aws-creds, key: access_key_id, github: AWS_ACCESS_KEY_ID}`",
        )
    if kind in _TYPE_NAMES or all(e["type"] in _TYPE_NAMES for e in errors):
        wanted = " or ".join(dict.fromkeys(_TYPE_NAMES.get(e["type"], "valid") for e in errors))
        got = "a value" if secret else _describe(value)
        return Finding(path, f"must be {wanted}, got {got}", _type_hint(kind, value))
    if kind == "literal_error":
        expected = first["ctx"]["expected"]
        got = "" if secret else f", got {_describe(value)}"
        return Finding(path, f"must be one of {expected}{got}", _close_match_hint(value, expected))
    if isinstance(value, str) and token_kind(value):
        # Whatever the rule, its message might quote the value: say only that it is refused.
        return Finding(path, "is not valid here (the value is not shown: it looks like a credential)")
    if kind == "value_error":
        message = str(first["ctx"]["error"]) if "ctx" in first else first["msg"]
        return Finding(path, message)
    if kind in _COMPARISONS:
        bound = next(iter(first["ctx"].values()))
        what = "an integer" if isinstance(value, int) else "a number"
        got = "a value" if secret else repr(value)
        return Finding(path, f"must be {what} {_COMPARISONS[kind]} {bound}, got {got}")
    return Finding(path, first["msg"])


_COMPARISONS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


def _type_hint(kind: str, value: Any) -> str:
    if kind == "string_type" and isinstance(value, float):
        return 'YAML read this as a number; quote it to keep it text, e.g. "3.10"'
    if kind == "string_type" and isinstance(value, int | bool):
        return "quote it to keep it text"
    if kind == "bool_type" and isinstance(value, str):
        return "write true or false (mlproject.yaml reads YAML 1.2: yes/no/on/off are plain strings)"
    if kind in ("int_type", "float_type") and isinstance(value, str):
        return "write the number without quotes"
    return ""


def _close_match_hint(value: Any, expected: str) -> str:
    if not isinstance(value, str):
        return ""
    options = re.findall(r"'([^']*)'", expected)
    match = difflib.get_close_matches(value, options, n=1)
    return f"did you mean '{match[0]}'?" if match else ""


_EXAMPLES = {
    ("apiVersion",): "start the file with `apiVersion: mlc/v1`",
    ("kind",): "add `kind: MLProject`",
    ("metadata",): "e.g. `metadata: {name: churn}`",
    ("metadata", "name"): "e.g. `name: churn` (DNS-1123 label, 1-40 chars)",
    ("train", "entrypoint"): "e.g. `entrypoint: churn.model:train`",
}


def _example_for(path: FieldPath) -> str:
    return _EXAMPLES.get(tuple(str(p) for p in path), "")


def _unknown_key(path: FieldPath) -> Finding:
    key = str(path[-1])
    if token_kind(key):
        return Finding(path, "unknown key (not shown: it looks like a credential)", at_key=True)
    allowed = sorted(allowed_keys(path[:-1]))
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        message = f"unknown key '{key}'; did you mean '{close[0]}'?"
    else:
        message = f"unknown key '{key}'; valid keys: {', '.join(allowed)}" if allowed else f"unknown key '{key}'"
    return Finding(path, message, at_key=True)


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) for a in _unwrap(arg)]
    return [annotation]


def _step(annotation: Any, key: str | int) -> Any:
    for candidate in _unwrap(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            for name, info in candidate.model_fields.items():
                if key in (name, info.alias):
                    return info.annotation
            if candidate is Data:
                return Dataset
        origin = typing.get_origin(candidate)
        if origin is dict:
            return typing.get_args(candidate)[1]
        if origin is list:
            return typing.get_args(candidate)[0]
    return None


def allowed_keys(path: FieldPath) -> set[str]:
    """The keys the spec format allows in the mapping at `path` (for "did you mean")."""
    annotation: Any = MLProject
    for key in path:
        annotation = _step(annotation, key)
        if annotation is None:
            return set()
    for candidate in _unwrap(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return {info.alias or name for name, info in candidate.model_fields.items()}
    return set()
