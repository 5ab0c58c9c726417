"""`mlc vendor` for a spec that installs mlc from an index: lock what that index serves.

pip downloads the release (no dependencies) and the lock (`mlc.runtime.lock`) records each
file's sha256, which the images and CI check before installing.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path


def index_release_hashes(index_url: str, version: str) -> list[str]:
    """sha256 of each file pip downloads for `mlc==version` from `index_url` (its login, if any,
    from pip's own configuration); raises LookupError with pip's reason when it cannot."""
    with tempfile.TemporaryDirectory(prefix="mlc-vendor-") as folder:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--index-url", index_url]
        run = subprocess.run([*command, "-d", folder, f"mlc=={version}"], capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise LookupError(f"pip could not download mlc=={version} from {index_url}: {run.stderr.strip()[-500:]}")
        return sorted(hashlib.sha256(path.read_bytes()).hexdigest() for path in Path(folder).iterdir())
