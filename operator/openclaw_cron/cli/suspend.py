"""`kubectl openclaw suspend` / `resume`: flip spec.suspend."""

from __future__ import annotations

from .cluster import Ctx
from .common import EXIT_OK, SINGULAR_REF


def cmd_suspend(ctx: Ctx, suspend: bool) -> int:
    name = ctx.args.name
    job = ctx.cluster.get(name)
    verb = "suspended" if suspend else "resumed"
    if bool((job.get("spec") or {}).get("suspend")) == suspend:
        print(f"{SINGULAR_REF}/{name} {verb} (no change)", file=ctx.out)
        return EXIT_OK
    ctx.cluster.merge_patch(name, {"spec": {"suspend": suspend}})
    print(f"{SINGULAR_REF}/{name} {verb}", file=ctx.out)
    return EXIT_OK
