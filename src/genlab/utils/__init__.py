"""Plumbing any layer may use: whole-file writes, caches of derived files, pixel value ranges."""
