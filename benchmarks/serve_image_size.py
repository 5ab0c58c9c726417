"""What the serve image carries: its venv built as the serve Dockerfile builds it, beside the
full runtime installed the default way and MLServer's MLflow runtime (the anchor).

The compiled serve Dockerfile installs the pinned CPU torch, the user's lock, then `mlc[serve]`,
all with `pip install --no-compile`, then runs `python -m mlc.runtime.image_files serve` (prune
what no import reaches, compile bytecode for what the start imports). This builds each venv
under a temporary directory with torch first (the project's pin; CPU, as the Dockerfile's CPU
index gives) and reports its site-packages: on disk (what `du` shows), apparent size, apparent
size without bytecode, and the largest packages. The user's lock is left out: it is the user's.

Rows:
- `mlc[serve], as the Dockerfile builds it`: --no-compile, then `mlc.runtime.image_files serve`;
- `mlc[runtime], pip's default`: every module's bytecode compiled at install (the train image);
- `mlserver + mlserver-mlflow, pip's default`: the anchor, serving the same MLflow model.

Run: `.venv/bin/python benchmarks/serve_image_size.py [--keep DIR]` (network: the package
registries; about 3 minutes).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # the project's pin (Makefile)
MIB = 1024 * 1024


def disk_bytes(path: Path) -> int:
    """Bytes of disk blocks, as `du` counts them."""
    return sum(entry.lstat().st_blocks * 512 for entry in path.rglob("*"))


def apparent_bytes(path: Path, bytecode: bool = True) -> int:
    return sum(
        entry.lstat().st_size for entry in path.rglob("*") if entry.is_file() and (bytecode or entry.suffix != ".pyc")
    )


Sizes = tuple[dict[str, float], list[tuple[str, float]]]  # totals in MiB; the largest packages


def measure(name: str, requirements: list[str], lean: bool, root: Path) -> Sizes:
    """Install `requirements` (torch first) into a new venv; with `lean`, as the serve Dockerfile
    does (no bytecode at install, then `mlc.runtime.image_files serve`)."""
    venv = root / f"venv-{name}"
    # No pip in the venv itself (it is not part of any requirement set): this interpreter's pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--disable-pip-version-check"]
    if lean:
        pip.append("--no-compile")
    subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, *requirements], check=True)
    if lean:
        subprocess.run([str(python), "-m", "mlc.runtime.image_files", "serve"], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    sizes = {
        "disk": disk_bytes(site) / MIB,
        "apparent": apparent_bytes(site) / MIB,
        "without bytecode": apparent_bytes(site, bytecode=False) / MIB,
    }
    packages = sorted(
        ((entry.name, disk_bytes(entry) / MIB) for entry in site.iterdir() if entry.is_dir()),
        key=lambda item: -item[1],
    )
    return sizes, packages[:12]


def clean_source(root: Path) -> Path:
    """This checkout's package sources, copied: no venv, caches or build leftovers in the wheel."""
    source = root / "mlc-src"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", ".mlc", "*.egg-info", "build", "tests"),
    )
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="Build the venvs here and keep them (default: a temporary folder).")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="serve-image-size-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        source = clean_source(root)
        rows = {
            "mlc[serve], as the Dockerfile builds it": measure("serve", [f"{source}[serve]"], True, root),
            "mlc[runtime], pip's default": measure("runtime", [f"{source}[runtime]"], False, root),
            "mlserver + mlserver-mlflow, pip's default": measure(
                "mlserver", ["mlserver", "mlserver-mlflow"], False, root
            ),
        }
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"site-packages of a fresh venv with {TORCH} (CPU), MiB\n")
    print("| venv | on disk | apparent | apparent, no bytecode |")
    print("| --- | ---: | ---: | ---: |")
    for name, (sizes, _) in rows.items():
        print(f"| {name} | {sizes['disk']:,.0f} | {sizes['apparent']:,.0f} | {sizes['without bytecode']:,.0f} |")
    for name, (_, packages) in rows.items():
        largest = ", ".join(f"{package} {size:.0f}" for package, size in packages)
        print(f"\nlargest in {name} (MiB on disk): {largest}")


if __name__ == "__main__":
    main()
