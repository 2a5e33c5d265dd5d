"""Tracker store backends, one per module; pick one by name with ``create_tracker_store``."""
