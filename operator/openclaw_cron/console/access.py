"""Who sees what in the console: the archive's identity and RBAC, per namespace.

The console is served on the archive's listeners, so a request's user is the one the API
server vouches for (front-proxy certificate, archive/auth.py) and each namespace shown is one
RBAC lets that user `list` archive `runs` in (a SubjectAccessReview, cached as for the archive
API). "All namespaces" means every namespace with jobs or runs that passes that review: one
cluster-scope review first (a ClusterRoleBinding covers all), else one per namespace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiohttp import web

from ..archive.auth import User
from ..archive.server import GUARD, Guard


class Viewer:
    """The user of one request (None on the direct listener: an admin's port-forward, everything)."""

    def __init__(self, guard: Guard, user: User | None) -> None:
        self.guard = guard
        self.user = user

    @property
    def name(self) -> str:
        return "direct access (port-forward)" if self.user is None else self.user.name

    async def denial(self, namespace: str, verb: str = "list", sub: str = "") -> web.Response | None:
        """The 403 the archive would answer for runs in `namespace`, or None when allowed."""
        return await self.guard.may(self.user, verb, namespace, sub)

    async def may_events(self, namespace: str) -> bool:
        return await self.guard.may(self.user, "list", namespace, group="", version="v1", resource="events") is None

    async def readable(self, candidates: Iterable[str]) -> list[str]:
        """The namespaces among `candidates` this user may list runs in, sorted."""
        names = sorted(set(candidates))
        if self.user is None or await self.guard.may(self.user, "list", None) is None:
            return names
        answers = await asyncio.gather(*(self.guard.may(self.user, "list", ns) for ns in names))
        return [ns for ns, denied in zip(names, answers, strict=True) if denied is None]


async def viewer(request: web.Request) -> Viewer | web.Response:
    """The request's viewer, or the 401 (no front-proxy certificate, no user)."""
    guard = request.app[GUARD]
    user = await guard.user(request)
    if isinstance(user, web.Response):
        return user
    return Viewer(guard, user)
