"""`kubectl openclaw resume`: undo suspend (spec.suspend) and a failure pause (annotation).

A job paused by `failurePolicy` is resumed through the annotation cron.openclaw.io/resume,
never by editing the spec, so GitOps sees no drift; a suspended job gets spec.suspend false.
"""

from __future__ import annotations

from .. import naming as n
from .cluster import Ctx
from .common import EXIT_OK, SINGULAR_REF, rfc3339_ms, status_of


def cmd_resume(ctx: Ctx) -> int:
    name = ctx.args.name
    job = ctx.cluster.get(name)
    suspended = bool((job.get("spec") or {}).get("suspend"))
    status = status_of(job)
    paused = status.get("state") == "Paused" or bool(status.get("paused"))
    if not suspended and not paused:
        print(f"{SINGULAR_REF}/{name} resumed (no change)", file=ctx.out)
        return EXIT_OK
    patch: dict[str, object] = {}
    if suspended:
        patch["spec"] = {"suspend": False}
    if paused:
        patch["metadata"] = {"annotations": {n.ANNOTATION_RESUME: rfc3339_ms(ctx.now())}}
    ctx.cluster.merge_patch(name, patch)
    what = " and ".join(w for w, on in (("unsuspended", suspended), ("unpaused", paused)) if on)
    print(f"{SINGULAR_REF}/{name} resumed" + (f" ({what})" if paused else ""), file=ctx.out)
    return EXIT_OK
