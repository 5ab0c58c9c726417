"""The GitHub Actions the workflows use, each pinned to a full commit SHA (`action-pins.json` beside it).

The file is data, refreshed by hand from the actions' own release tags; this module validates it
with pydantic and turns an action name into a `uses:` value that keeps the tag as a comment.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from mlc.compiler.backends.yaml_writer import Commented

PINS_FILE = "action-pins.json"


class ActionPin(BaseModel):
    """One action's release tag and the commit SHA that tag pointed to when it was recorded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tag: str = Field(pattern=r"^v\d+(\.\d+){0,2}$")
    sha: str = Field(pattern=r"^[0-9a-f]{40}$")


class ActionPins(RootModel[dict[str, ActionPin | str]]):
    """`owner/repo` -> pin; keys starting with `_` are notes about the file."""

    @field_validator("root")
    @classmethod
    def _names_are_actions(cls, pins: dict[str, ActionPin | str]) -> dict[str, ActionPin | str]:
        for name, pin in pins.items():
            if name.startswith("_"):
                continue
            if not isinstance(pin, ActionPin) or name.count("/") != 1:
                raise ValueError(f"{name!r} must be an owner/repo action with a tag and sha")
        return pins

    def pins(self) -> dict[str, ActionPin]:
        """Every action pin, notes left out."""
        return {name: pin for name, pin in self.root.items() if isinstance(pin, ActionPin)}


@cache
def action_pins() -> dict[str, ActionPin]:
    """The validated pins, read from package data once per process."""
    text = (files(__package__) / PINS_FILE).read_text(encoding="utf-8")
    return ActionPins.model_validate(json.loads(text)).pins()


def pinned_action(name: str) -> Commented:
    """The `uses:` value of an action: `owner/repo@<sha>` with its tag as a trailing comment."""
    pin = action_pins()[name]  # KeyError: a backend bug, every action it uses must be pinned
    return Commented(f"{name}@{pin.sha}", pin.tag)
