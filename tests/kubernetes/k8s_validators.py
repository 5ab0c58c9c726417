"""The ecosystems' validators, found beside the interpreter or on PATH (tests skip without)."""

from __future__ import annotations

import json
import shutil
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from k8s_cases import SHARED

CRD_SCHEMAS = SHARED / "schemas" / "crds"
KUBERNETES_VERSION = "1.33.0"
# Custom resources the shared folder has no schema for: a structural test checks each instead
# (test_k8s_kserve.py for the ClusterStorageContainer).
WITHOUT_SHARED_SCHEMA = frozenset({("serving.kserve.io/v1alpha1", "ClusterStorageContainer")})


def find_tool(name: str) -> str | None:
    """The executable `name` beside `sys.executable`, else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def api_group(api_version: str) -> str:
    """`apps/v1` -> `apps`; `v1` -> `` (the core group)."""
    return api_version.rpartition("/")[0]


def crd_schema_path(doc: dict[str, Any]) -> Path:
    """Where the shared schema of a custom resource lives."""
    group, _, version = doc["apiVersion"].rpartition("/")
    return CRD_SCHEMAS / group / f"{doc['kind'].lower()}_{version}.json"


@cache
def _crd_groups() -> frozenset[str]:
    return frozenset(p.name for p in CRD_SCHEMAS.iterdir() if p.is_dir()) if CRD_SCHEMAS.is_dir() else frozenset()


def is_custom_resource(doc: dict[str, Any]) -> bool:
    """Whether a document is a custom resource (its group has a folder of shared schemas)."""
    group = api_group(doc["apiVersion"])
    return group in _crd_groups() or (bool(group) and "." in group and not group.endswith(".k8s.io"))


@cache
def _schema(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def crd_errors(doc: dict[str, Any]) -> list[str]:
    """Schema errors of a custom resource (Go-regex patterns: iter_errors, not validate)."""
    if (doc["apiVersion"], doc["kind"]) in WITHOUT_SHARED_SCHEMA:
        return []
    path = crd_schema_path(doc)
    if not path.is_file():
        return [f"no shared schema {path.relative_to(CRD_SCHEMAS)} for {doc['kind']}"]
    schema = _schema(path)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
