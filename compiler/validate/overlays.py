"""Environment overlays: `environments.<name>` deep-merged over the base, with the source map
that blames each merged value on the line that set it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlc.compiler.diagnostics import SourcePosition
from mlc.compiler.load.document import FieldPath, LoadedDocument, SourceMap


def deep_merge(base: Any, overlay: Any) -> Any:
    """Overlay mappings onto base mappings; anything else replaces; `null` deletes a key."""
    if not (isinstance(base, dict) and isinstance(overlay, dict)):
        return overlay
    merged = dict(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = deep_merge(base.get(key), value)
    return merged


@dataclass(frozen=True)
class OverlaySources:
    """The document's positions split once: the base's (outside `environments`), and each
    environment's own, keyed by the path inside its overlay. Merging N overlays then costs the
    base's size each, not the whole document's (which grows with N)."""

    base_values: dict[FieldPath, SourcePosition]
    base_keys: dict[FieldPath, SourcePosition]
    environment_values: dict[str, dict[FieldPath, SourcePosition]]
    environment_keys: dict[str, dict[FieldPath, SourcePosition]]

    @classmethod
    def of(cls, document: LoadedDocument) -> OverlaySources:
        """Split `document`'s source map."""
        tables: list[tuple[dict[FieldPath, SourcePosition], dict[str, dict[FieldPath, SourcePosition]]]] = []
        for table in (document.source.values, document.source.keys):
            base: dict[FieldPath, SourcePosition] = {}
            per_environment: dict[str, dict[FieldPath, SourcePosition]] = {}
            for path, position in table.items():
                if path[:1] == ("environments",):
                    if len(path) > 2:
                        per_environment.setdefault(str(path[1]), {})[path[2:]] = position
                else:
                    base[path] = position
            tables.append((base, per_environment))
        (base_values, environment_values), (base_keys, environment_keys) = tables
        return cls(base_values, base_keys, environment_values, environment_keys)


def merge_overlay(
    document: LoadedDocument, env: str, sources: OverlaySources | None = None
) -> tuple[dict[str, Any], SourceMap, set[FieldPath]]:
    """The merged data of one environment, its source map, and the paths the overlay set.

    A path is the overlay's when the overlay replaced the value there (a mapping merged into a
    mapping stays the base's, so only what the overlay really changed is blamed on it). Pass
    `sources` (`OverlaySources.of(document)`) when merging every environment of a document.
    """
    sources = sources if sources is not None else OverlaySources.of(document)
    overlay = document.data["environments"][env]
    merged = deep_merge(document.data, overlay)
    merged.pop("environments", None)
    source = SourceMap(document.source.file, dict(sources.base_values), dict(sources.base_keys))
    own = (
        (sources.environment_values.get(env, {}), source.values),
        (sources.environment_keys.get(env, {}), source.keys),
    )
    origin: set[FieldPath] = set()

    def walk(base_node: Any, overlay_node: dict[str, Any], path: FieldPath) -> None:
        for key, value in overlay_node.items():
            here = (*path, key)
            if isinstance(value, dict) and isinstance(base_node, dict) and isinstance(base_node.get(key), dict):
                walk(base_node[key], value, here)
                continue
            origin.add(here)
            for table, target in own:
                for inside, position in table.items():
                    if inside[: len(here)] == here:
                        target[inside] = position

    walk(document.data, overlay, ())
    return merged, source, origin
