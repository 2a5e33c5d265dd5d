"""MongoDB backend: the store and its config."""
