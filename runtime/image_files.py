"""What the serve image keeps of its installed packages: run once in its builder stage.

`python -m mlc.runtime.image_files serve [SITE_PACKAGES]`, after `pip install --no-compile`:

1. removes files no import reaches (`UNUSED`): torch's C++ test binaries, headers and bundled
   protoc, pyarrow's headers, C++ sources and tests, about 200 MiB;
2. compiles bytecode for exactly the modules the `serve` start imports (`START_IMPORTS`, their
   whole import closure), as unchecked-hash `.pyc` files: the image is never edited, so nothing
   needs to stat a source to trust its bytecode, and the bytes do not depend on file times.

Why: an image pull is part of every scale-up, and the serve image is CPU torch plus what serving
imports. pip compiles every module of every package (about 200 MiB, most of it never imported by
a server), while a read-only root filesystem cannot cache bytecode at run time: whatever the start
imports must be compiled here, and only that. A module imported later (a drift or batch run on the
serve image) still works, compiled in memory. A model that calls `torch.compile` while serving
needs torch's headers; serve it from the train image.

`tests/runtime/test_image_files.py` starts a real server from a real registry on packages pruned
by this module and asserts the start finds bytecode for every module it imports.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import py_compile
import shutil
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

# Paths (globs) relative to site-packages that no import reaches: tests, C/C++ headers, sources
# and build tools. torch/bin keeps torch_shm_manager (torch's import checks for it).
UNUSED = (
    "torch/test",
    "torch/include",
    "torch/bin/test_*",
    "torch/bin/*Test",
    "torch/bin/protoc*",
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/tests",
)

# The modules whose import closure the `serve` start loads, beyond the CLI's: the server, the
# forked child resolving and downloading a registry model, loading and scoring, uvicorn's fast
# loop and parser (chosen by name at run time, so not reached by importing uvicorn).
START_IMPORTS = {
    "serve": (
        "mlc.runtime.cli",
        "mlc.runtime.config",
        "mlc.runtime.serve.app",
        "mlc.runtime.serve.served_model",
        "mlc.runtime.serve.model_fetch",
        "mlc.runtime.serve.scoring",
        "mlc.runtime.serve.open_inference",
        "mlc.runtime.serve.request_log",
        "mlc.runtime.serve.access",
        "mlc.runtime.serve.header_deadline",  # uvicorn's protocol, chosen at run time
        "mlc.runtime.tracking_client",  # the fetch child's bounds on MLflow's retries
        "mlc.runtime.prediction_log.writer",
        "mlc.runtime.contract_model",
        "mlc.runtime.preprocessor",
        "numpy",
        "pyarrow",
        "pyarrow.compute",
        "pyarrow.csv",
        "torch",
        "torch._VF",  # these three: loading a model
        "torch.backends.python_native",
        "torch.utils.serialization.config",
        "orjson",
        "yaml",
        "certifi",  # an https registry's CA bundle (the REST fetch)
        "prometheus_client",
        "uvicorn",
        "uvicorn.main",
        "uvicorn.loops.uvloop",
        "uvicorn.protocols.http.httptools_impl",
        "uvicorn.protocols.websockets.auto",
        "uvicorn.lifespan.on",
        "uvicorn.loops.auto",
        "uvicorn.protocols.http.auto",
        "mlflow",
        "mlflow.artifacts",
        "mlflow.tracking",
        "mlflow.exceptions",
        "mlflow.tracking.request_header.registry",  # the registry client's first request
        "mlflow.tracing.export.utils",  # these five: MLflow's artifact download (the fetch child)
        "mlflow.tracing.processor.otel",
        "mlflow.tracing.processor.base_mlflow",
        "mlflow.tracing.utils.environment",
        "opentelemetry.sdk.metrics",
    ),
}

# Modules the start tries to import and does without (an optional dependency missing): compiled
# from their files, never imported here, as their import fails.
START_ATTEMPTS = {
    "serve": (
        "dateutil.tz.win",
        "mlflow.data.huggingface_dataset",  # MLflow's dataset and signature modules: they need
        "mlflow.data.numpy_dataset",  # pandas, which serving does without
        "mlflow.data.pandas_dataset",
        "mlflow.data.polars_dataset",
        "mlflow.data.spark_dataset",
        "mlflow.data.tensorflow_dataset",
        "mlflow.models.signature",
        "mlflow.types.utils",
        "urllib3.contrib.socks",
        "uvicorn.supervisors.watchfilesreload",
    ),
}


def remove_unused(site_packages: Path) -> int:
    """Delete the `UNUSED` paths under `site_packages`; the bytes freed."""
    freed = 0
    for pattern in UNUSED:
        for path in sorted(site_packages.glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                freed += sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())
                shutil.rmtree(path)
            else:
                freed += path.lstat().st_size
                path.unlink()
    return freed


def import_closure(modules: Iterable[str]) -> list[Path]:
    """The source files of every module importing `modules` loads (stdlib excluded: its
    bytecode comes with Python)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    for name in modules:
        importlib.import_module(name)
    # A module may replace itself in sys.modules with an object that names no file (torch._VF):
    # the named modules' own files are looked up where their import found them.
    files = set(source_files(modules))
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None)
        # Some modules name a file that is not there (torch.classes: "_classes.py").
        if not source or not source.endswith(".py") or not Path(source).is_absolute() or not Path(source).is_file():
            continue
        path = Path(source).resolve()
        if not path.is_relative_to(stdlib) or "site-packages" in path.parts:
            files.add(path)
    return sorted(files)


def source_files(modules: Iterable[str]) -> list[Path]:
    """The source files of `modules`, found on their parents' paths without importing them (or
    reading sys.modules); a module whose parent package is missing has none."""
    files = []
    for name in modules:
        parent, _, leaf = name.rpartition(".")
        try:
            search_path = importlib.import_module(parent).__path__ if parent else None
        except ImportError:
            continue
        spec = importlib.machinery.PathFinder.find_spec(leaf if parent else name, search_path)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            files.append(Path(spec.origin).resolve())
    return files


def compile_start(role: str) -> int:
    """Compile bytecode for the import closure of `role`'s start; the number of modules."""
    sys.dont_write_bytecode = True  # importing must not write timestamp bytecode first
    files = import_closure(START_IMPORTS[role]) + source_files(START_ATTEMPTS[role])
    for path in files:
        py_compile.compile(
            str(path), doraise=True, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
    return len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlc.runtime.image_files", description=__doc__.split("\n")[0])
    parser.add_argument("role", choices=sorted(START_IMPORTS))
    parser.add_argument(
        "site_packages", nargs="?", type=Path, help="where the packages are (default: this interpreter's)"
    )
    arguments = parser.parse_args(argv)
    site_packages = arguments.site_packages or Path(sysconfig.get_paths()["purelib"])
    freed = remove_unused(site_packages)
    compiled = compile_start(arguments.role)
    print(f"removed {freed / 2**20:.0f} MiB of unused files; compiled {compiled} modules {arguments.role} imports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
