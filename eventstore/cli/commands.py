"""Imports every command module so that each registers its commands on the app."""

from __future__ import annotations

from eventstore.cli import (
    analytics,  # noqa: F401
    db,  # noqa: F401
    events,  # noqa: F401
    export,  # noqa: F401
    info,  # noqa: F401
    migrate,  # noqa: F401
    privacy,  # noqa: F401
    relay,  # noqa: F401
    run,  # noqa: F401
)
