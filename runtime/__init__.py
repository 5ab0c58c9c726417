"""mlc.runtime: the thin runtime that runs inside compiled artifacts (train, gate, drift, serve)."""
