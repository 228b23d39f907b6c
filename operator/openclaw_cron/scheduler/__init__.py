"""The scheduler: one loop for every job, and a job's pass (DESIGN §4; docs/wakes.md for what wakes a job).

Modules, top down: `loop` (the Scheduler: events in, due jobs out, bounded passes), `jobpass`
(one pass: the world rebuilt → `reconcile()` → the plan applied), `world` (what a pass reads
from the API besides the Pod index), `apply` (the plan's writes in a safe order), `writes`
(the pure rules for those writes), `queue` (the heap of due times), `state` (Runtime and the
per-job state), `orchestration` + `kube_reader` (orchestration's I/O), `peering` (kopf's pause).
"""

from .loop import Scheduler
from .peering import kopf_paused
from .state import Runtime

__all__ = ["Runtime", "Scheduler", "kopf_paused"]
