"""Stage 5, plan: artifacts against the working tree and `mlc.lock` -> changes (and saved plans)."""
