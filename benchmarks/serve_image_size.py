"""What the serve image installs: its requirement set in a fresh venv, next to `mlc[runtime]`.

The compiled serve Dockerfile installs the pinned CPU torch first, then the user's lock, then
`mlc[serve]` (see `compiler/backends/docker.py`). This installs torch (the project's pin: CPU
here, as the Dockerfile's CPU index gives) and then this checkout with one set of extras into
a new venv under a temporary directory, and reports the venv's site-packages: on disk (what
`du` shows, with the bytecode pip compiles at install time), apparent size, apparent size
without bytecode, and the largest packages. The user's lock is left out: it is the user's.

Run: `.venv/bin/python benchmarks/serve_image_size.py [--extras serve runtime] [--keep DIR]`
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


def measure(extras: str, root: Path) -> tuple[dict[str, float], list[tuple[str, float]]]:
    venv = root / f"venv-{extras}"
    # No pip in the venv itself (it is not part of any requirement set): this interpreter's pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, TORCH], check=True)
    source = root / "mlc-src"
    if not source.exists():  # a clean copy: no venv, caches or build leftovers in the wheel
        shutil.copytree(
            REPO,
            source,
            ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", ".mlc", "*.egg-info", "build", "tests"),
        )
    subprocess.run([*pip, f"{source}[{extras}]"], check=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extras", nargs="+", default=["serve", "runtime"])
    parser.add_argument("--keep", type=Path, help="Build the venvs here and keep them (default: a temporary folder).")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="serve-image-size-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        results = {extras: measure(extras, root) for extras in args.extras}
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"site-packages of a fresh venv with {TORCH} (CPU) and this checkout's mlc[EXTRAS], MiB\n")
    print("| requirement set | on disk | apparent | apparent, no bytecode |")
    print("| --- | ---: | ---: | ---: |")
    for extras, (sizes, _) in results.items():
        print(f"| mlc[{extras}] | {sizes['disk']:,.0f} | {sizes['apparent']:,.0f} | {sizes['without bytecode']:,.0f} |")
    for extras, (_, packages) in results.items():
        largest = ", ".join(f"{name} {size:.0f}" for name, size in packages)
        print(f"\nlargest in mlc[{extras}] (MiB on disk): {largest}")


if __name__ == "__main__":
    main()
