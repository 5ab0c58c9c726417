"""`mlc init`: a commented starter project that validates as written."""

from __future__ import annotations

import re
from pathlib import Path

from mlc.compiler.backends.templating import render_template
from mlc.compiler.errors import MlcError
from mlc.compiler.output_tree import write_atomically
from mlc.compiler.validate.project_files import LOCK_COMMAND

_MODEL_PY = '''"""Training entrypoint: mlc calls `train(ctx)` with the project's params and data."""


def train(ctx):
    """Train a model from ctx.params on ctx's training data and return it."""
    raise NotImplementedError("write your training code here")
'''


class ScaffoldError(MlcError):
    """The project cannot be scaffolded as asked (e.g. a spec already exists)."""


def project_name_for(directory: Path) -> str:
    """A DNS-1123 project name derived from a directory name."""
    name = re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-")[:40].strip("-")
    return name or "my-model"


def write_new_file(path: Path, text: str, overwrite: bool = False) -> None:
    """Write `text` atomically (temp file + rename); refuse to replace a file unless `overwrite`."""
    if path.exists() and not overwrite:
        raise ScaffoldError(f"{path} already exists (use --force to overwrite)")
    write_atomically(path, text.encode("utf-8"))


def _torch_release() -> dict[str, object]:
    """The torch release the scaffold names: the installed one when the table knows it (read
    from its metadata, torch is not imported), else the newest the table has."""
    from importlib import metadata

    from mlc.compiler.compat import supported_torch_versions

    known = supported_torch_versions()
    try:
        installed = metadata.version("torch").split("+")[0]
    except metadata.PackageNotFoundError:
        installed = None
    if installed in known:
        return {"torch": installed, "torch_installed": True}
    return {"torch": known[-1], "torch_installed": False}


def scaffold_project(directory: Path, name: str | None = None, force: bool = False) -> list[Path]:
    """Write mlproject.yaml, its JSON Schema, and (where missing) a lock file and a train stub."""
    from mlc.compiler.load.json_schema import json_schema_text
    from mlc.compiler.load.values import project_name

    name = name or project_name_for(directory)
    try:
        project_name(name)
    except ValueError as exc:
        raise ScaffoldError(f"--name: {exc}") from None
    spec = directory / "mlproject.yaml"
    if spec.exists() and not force:
        raise ScaffoldError(f"{spec} already exists (use --force to overwrite)")
    package = name.replace("-", "_")
    files = {
        spec: render_template("mlproject.yaml.j2", name=name, package=package, **_torch_release()),
        directory / "mlproject.schema.json": json_schema_text(),
    }
    optional = {
        directory / "requirements.lock": f"# Fully pinned requirements (name==version), made with {LOCK_COMMAND}.\n",
        directory / "src" / package / "__init__.py": "",
        directory / "src" / package / "model.py": _MODEL_PY,
    }
    files.update({path: text for path, text in optional.items() if not path.exists()})
    for path, text in files.items():
        write_new_file(path, text, overwrite=True)
    return list(files)
