"""Redis backend: the store and its config."""
