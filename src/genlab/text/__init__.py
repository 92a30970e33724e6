"""Tokenizers and vocabularies, shared by the text datamodules and the language models."""
