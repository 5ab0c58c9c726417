"""Stage 2, validate: loaded data -> a typed, checked `ValidatedProject`, or positioned diagnostics."""
