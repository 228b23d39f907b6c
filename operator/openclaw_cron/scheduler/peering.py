"""Whether kopf's peering paused this replica: a standby must not schedule."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("openclaw_cron")


def kopf_paused() -> Callable[[], bool]:
    """Whether kopf's peering has paused this replica (a standby must not schedule).

    kopf keeps the pause state in a toggle set that it hands to its own root tasks but not to
    handlers; daemons (which kopf stops on pause) would need a finalizer per job, which is
    what this design avoids. So the toggle set is read from kopf's "daemon killer" root task,
    which exists in every mode; when it cannot be found the replica counts as active.
    """
    for task in asyncio.all_tasks():
        if task.get_name() != "daemon killer":
            continue
        toggles = _find_local(task.get_coro(), "operator_paused")
        if toggles is not None and hasattr(toggles, "is_on"):
            return lambda: bool(toggles.is_on())
    log.warning("kopf's pause state was not found; peering cannot pause this replica's scheduler")
    return lambda: False


def _find_local(coro: Any, name: str, depth: int = 4) -> Any:
    """A local variable of a coroutine or of one it wraps (kopf's guard → the root task's coroutine)."""
    for _ in range(depth):
        frame = getattr(coro, "cr_frame", None)
        if frame is None:
            return None
        if name in frame.f_locals:
            return frame.f_locals[name]
        inner = frame.f_locals.get("coro")
        coro = inner if inner is not None else getattr(coro, "cr_await", None)
    return None
