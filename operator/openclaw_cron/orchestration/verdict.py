"""The answer of a gate (dependencies, conditions): met or not, and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    met: bool
    #: For users: which condition or dependency, and what was found.
    message: str = ""
    #: Unmet and nothing can change that for this slot (waiting is pointless).
    final: bool = False
    #: The inputs were not read yet (the pass should look again soon, not skip).
    unknown: bool = False


MET = Verdict(True)
