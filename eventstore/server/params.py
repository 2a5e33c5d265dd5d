"""Query parameters: an unknown one is a 400 naming it, never silently ignored.

``/events?type=user`` would otherwise return every event. The known names of a route are
those its handler and its dependencies declare, plus ``token`` (auth, on every route).
"""

from __future__ import annotations

import difflib
from typing import Any

from fastapi import Request

from eventstore.server.errors import ApiError

#: Accepted on every route: the auth token (``?token=``).
EVERYWHERE = frozenset({"token"})
#: Attribute on each route holding its known names (kept on the route: an id()-keyed cache
#: outlived apps, and a later route could reuse a collected one's id).
_ATTRIBUTE = "_eventstore_query_names"


def _names(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _names(sub)
    return names


def known_parameters(route: Any) -> frozenset[str] | None:
    """The query parameters ``route`` takes (None for routes FastAPI does not parse)."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    known: frozenset[str] | None = getattr(route, _ATTRIBUTE, None)
    if known is None:
        known = frozenset(_names(dependant)) | EVERYWHERE
        setattr(route, _ATTRIBUTE, known)
    return known


async def refuse_unknown_parameters(request: Request) -> None:
    """400 naming every query parameter the route does not take (with a did-you-mean)."""
    known = known_parameters(request.scope.get("route"))
    if known is None:
        return
    unknown = sorted(set(request.query_params) - known)
    if not unknown:
        return
    parts = []
    for name in unknown:
        hint = difflib.get_close_matches(name, sorted(known - EVERYWHERE), n=1)
        parts.append(f"{name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    takes = ", ".join(sorted(known - EVERYWHERE)) or "none"
    raise ApiError(
        400,
        f"unknown query parameter {', '.join(parts)}; this route takes: {takes}",
        {"field": unknown[0], "location": "query"},
    )
