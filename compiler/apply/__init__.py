"""Stage 6, apply: planned changes -> files written atomically, a git commit, the CI bot's push."""
