"""Composing a config and checking it before anything is built: per-key rules (`rules`), the
machine (`machine`), and the rules that relate keys (`checks`, which asks the configured model
and datamodule classes for theirs)."""
