"""Golden vectors: load, lint, run and match."""
