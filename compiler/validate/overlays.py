"""Environment overlays: `environments.<name>` deep-merged over the base, with the source map
that blames each merged value on the line that set it."""

from __future__ import annotations

from typing import Any

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


def merge_overlay(document: LoadedDocument, env: str) -> tuple[dict[str, Any], SourceMap, set[FieldPath]]:
    """The merged data of one environment, its source map, and the paths the overlay set.

    A path is the overlay's when the overlay replaced the value there (a mapping merged into a
    mapping stays the base's, so only what the overlay really changed is blamed on it).
    """
    overlay = document.data["environments"][env]
    merged = deep_merge(document.data, overlay)
    merged.pop("environments", None)
    prefix: FieldPath = ("environments", env)
    base = document.source
    source = SourceMap(base.file, dict(base.values), dict(base.keys))
    origin: set[FieldPath] = set()

    def walk(base_node: Any, overlay_node: dict[str, Any], path: FieldPath) -> None:
        for key, value in overlay_node.items():
            here = (*path, key)
            if isinstance(value, dict) and isinstance(base_node, dict) and isinstance(base_node.get(key), dict):
                walk(base_node[key], value, here)
                continue
            origin.add(here)
            for table, target in ((base.values, source.values), (base.keys, source.keys)):
                for full, position in table.items():
                    if full[: len(prefix) + len(here)] == (*prefix, *here):
                        target[full[len(prefix) :]] = position

    walk(document.data, overlay, ())
    return merged, source, origin
