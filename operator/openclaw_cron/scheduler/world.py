"""The world a pass is decided on, beyond the Pod index: what the API says when the watch may lag.

The index (`pods.PodStore`, filled by the Pod informer) is what a pass normally reads; these
reads ask the API directly, only in the cases where the index may be behind or a fact lives
elsewhere (a Pod whose create had no clear answer, an active Pod the index lacks, the token
Secret, the global run cap).
"""

from __future__ import annotations

import logging
import time

from kubernetes.client.exceptions import ApiException

from ..job import JobView
from ..pods import PodStore, PodView, pod_view
from ..validation import FieldError
from .state import JobState, Runtime

log = logging.getLogger("openclaw_cron")
SECRET_CACHE_SECONDS = 30.0
#: Seconds a Pod we created may be missing from the Pod watch before we read it from the API.
INFLIGHT_GRACE = 10.0


class World:
    def __init__(self, rt: Runtime, pods: PodStore) -> None:
        self.rt = rt
        self.pods = pods

    async def resolve_uncertain(self, st: JobState, job: JobView, pods: list[PodView]) -> None:
        """Pods whose create failed without a clear answer (reset, timeout, 5xx after retries).

        The API may have created them all the same; the index shows them only when the watch
        does. Read them, so that the reconciler adopts an existing one instead of planning a
        newer slot over it (and losing the run).
        """
        seen = {p.name for p in pods}
        for name in sorted(st.uncertain):
            if name not in seen:
                body = await self.rt.kube.get_pod(job.ref.namespace, name)
                view = pod_view(body) if body is not None else None
                if view is not None and view.owner_uid == job.ref.uid:
                    pods.append(view)
                elif body is None:
                    self.rt.inflight.pop(name, None)  # never created: it holds no slot of the cap
            st.uncertain.discard(name)

    async def reread_active(self, job: JobView, pods: list[PodView]) -> None:
        """A safety-net pass reads its active Pods from the API: what a lost watch event hid.

        Only jobs with active runs pay for it, once per resync; what it finds goes into the Pod
        store too (newer versions only), and the pass's plan counts as a correction.
        """
        mine = {p.name: i for i, p in enumerate(pods)}
        for act in job.status.get("active", []):
            name = act.get("podName")
            if not name:
                continue
            body = await self.rt.kube.get_pod(job.ref.namespace, name)
            view = pod_view(body) if body is not None else None
            if body is None or view is None or view.owner_uid != job.ref.uid:
                continue  # gone: _confirm_gone asks again and records it
            self.pods.put(body)
            if name in mine:
                pods[mine[name]] = view
            else:
                pods.append(view)

    async def confirm_gone(self, job: JobView, pods: list[PodView]) -> frozenset[str]:
        """Active Pods missing from the index: ask the API before calling them deleted.

        A Pod the API has but the index lacks (a watch that lags or lost events around an API
        server restart) is added to `pods` as read, so the run is followed all the same. Pods we
        created a moment ago are left to the watch for `INFLIGHT_GRACE` seconds.
        """
        seen = {p.name for p in pods}
        missing = [a.get("podName", "") for a in job.status.get("active", []) if a.get("podName") not in seen]
        gone = set()
        mono = time.monotonic()
        for name in missing:
            since = self.rt.inflight.get(name)
            if since is not None and mono - since < INFLIGHT_GRACE:
                continue
            body = await self.rt.kube.get_pod(job.ref.namespace, name)
            view = pod_view(body) if body is not None else None
            if body is None:
                self.rt.inflight.pop(name, None)
                gone.add(name)
            elif view is not None and view.owner_uid == job.ref.uid:
                pods.append(view)
        return frozenset(gone)

    async def secret_errors(self, job: JobView) -> tuple[FieldError, ...]:
        """A missing token Secret makes the job invalid (checked at most every 30 s)."""
        rt, spec = self.rt, job.spec
        if (spec.get("payload") or {}).get("kind") == "command":
            return ()
        ref = (spec.get("gateway") or {}).get("tokenSecretRef") or {}
        name = ref.get("name") or rt.settings.gateway_token_secret
        key = ref.get("key") or rt.settings.gateway_token_key
        cache_key = (job.ref.namespace, name, key)
        cached = rt.secrets.get(cache_key)
        if cached and time.monotonic() - cached[0] < SECRET_CACHE_SECONDS:
            return (cached[1],) if cached[1] else ()
        try:
            found = await rt.kube.secret_key_exists(job.ref.namespace, name, key)
        except ApiException as exc:
            log.warning("cannot check Secret %s/%s: %s", job.ref.namespace, name, exc.reason)
            return ()
        origin = "" if ref.get("name") else " (the operator's default; set spec.gateway.tokenSecretRef or create it)"
        error = None
        if found is None:
            error = FieldError(
                "spec.gateway.tokenSecretRef", f'Secret "{name}" not found in namespace "{job.ref.namespace}"{origin}'
            )
        elif not found:
            error = FieldError("spec.gateway.tokenSecretRef", f'Secret "{name}" has no key "{key}"{origin}')
        rt.secrets[cache_key] = (time.monotonic(), error)
        return (error,) if error else ()

    def global_free(self) -> int | None:
        cap = self.rt.settings.max_concurrent_runs
        if cap <= 0:
            return None
        running = {p.name for store in self.pods.values() for p in store if not p.finished}
        return max(0, cap - len(running | self.rt.inflight.keys()))
