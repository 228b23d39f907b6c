"""Was a lost write applied? JSON merge patch (RFC 7386) containment.

A status patch guarded by resourceVersion whose answer is lost (a reset, a timeout after the
server applied it) is retried by the client and meets 409 Conflict: its own write bumped the
resourceVersion. Treating that as a real conflict drops what the pass did after the write
(Events, metrics). `applied(fresh, patch)` tells the two apart: the write is there when applying
the patch again would change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def applied(target: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """True when merge-patching `target` with `patch` would leave it unchanged."""
    for key, value in patch.items():
        current = target.get(key, _MISSING)
        if value is None:
            if current is not _MISSING:
                return False
        elif isinstance(value, Mapping):
            # a non-object (or absent) member is replaced by an object: a change
            if not isinstance(current, Mapping) or not applied(current, value):
                return False
        elif current is _MISSING or current != value:
            return False
    return True
