"""LightningDataModules, one per file."""
