"""Pytest plugins that start or connect to the real servers the tests use (one per service)."""
