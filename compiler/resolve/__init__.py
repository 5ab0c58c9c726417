"""Stage 3, resolve: a validated project -> one `ResolvedSpec` per environment, every derived fact filled in."""
