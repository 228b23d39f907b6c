"""The reconciler: one job's world (resource + owned Pods + clock) → a plan.

Pure: no API calls, no clock reads. The scheduler (`scheduler/`) feeds it the live
resource, the run Pods from kopf's index and `now`, then applies the plan in a safe order:
create Pods → patch status → delete Pods → events. Every step is idempotent, so an
operator that stops anywhere in between finds the same world on restart:

- a Pod created but not yet in status is adopted (it is newer than `lastSlot`, or answers
  a pending retry or the current run-now value);
- a finished Pod still listed in `status.active` is recorded;
- Pods are pruned only after the status that records them was written.
Modules, in the order a pass uses them: `reconciler` (`reconcile()`: the steps in order),
`slots` (where new runs come from), `gates` (orchestration: run, wait or skip), `runs` (a
run's life: adopt, follow, settle, admit, prune), `report` (the new status), `work` (a pass's
scratch state), `plan` (what a pass decides), `spec` (the spec and status read back).
"""

from .plan import Context, Event, Plan
from .reconciler import reconcile
from .spec import parse_spec, parse_status
from .work import retry_delay

__all__ = ["Context", "Event", "Plan", "parse_spec", "parse_status", "reconcile", "retry_delay"]
