"""`train -p NAME=VALUE`: parameters overridden for one run, checked against `train.params`.

A value is read as JSON when it parses (`0.01`, `5`, `true`, `[64, 32]`), else as text
(`adam`), and must fit the type the spec gives the parameter: an integer for an integer, a
number for a float (an integer is widened), a boolean for a boolean; a text parameter takes
the text as written. An unknown name is refused with the names there are.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mlc.runtime.errors import MlcRuntimeError


class OverrideError(MlcRuntimeError):
    """A `-p NAME=VALUE` that names no parameter of the spec, or a value of the wrong type."""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean (true or false)"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list (JSON, e.g. [64, 32])"
    if isinstance(value, dict):
        return 'a mapping (JSON, e.g. {"a": 1})'
    return "null"


def _typed(name: str, text: str, current: Any) -> Any:
    """`text` as the type of the spec's value `current`; OverrideError otherwise."""
    if isinstance(current, str):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    if isinstance(current, bool) or isinstance(value, bool):
        fits = isinstance(current, bool) and isinstance(value, bool)
    elif isinstance(current, float):
        fits = isinstance(value, int | float)
        value = float(value) if fits else value
    elif current is None:
        fits = True
    else:
        fits = type(value) is type(current)
    if not fits:
        raise OverrideError(
            f"-p {name}={text}: {name} is {_kind(current)} in train.params ({json.dumps(current)}), got {text!r}"
        )
    return value


def parse_overrides(pairs: Iterable[str], params: dict[str, Any]) -> dict[str, Any]:
    """`NAME=VALUE` pairs as typed values, in the order given (a later one wins)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        name = name.strip()
        if not equals or not name:
            raise OverrideError(f"-p {pair}: write NAME=VALUE, e.g. -p lr=0.01")
        if name not in params:
            known = ", ".join(f"{key}={json.dumps(value)}" for key, value in params.items()) or "none"
            raise OverrideError(f"-p {pair}: {name!r} is not a parameter of train.params; the parameters are: {known}")
        overrides[name] = _typed(name, text, params[name])
    return overrides


def overrides_tag(overrides: dict[str, Any]) -> str:
    """The `mlc.overrides` tag: `lr=0.01 epochs=5`, values as JSON (empty when none)."""
    return " ".join(f"{name}={json.dumps(value)}" for name, value in overrides.items())
