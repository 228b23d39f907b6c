"""Test harness: an emulated Kubernetes API server, a simulated kubelet, and a cluster runner.

    from support import Cluster, Script, Fault, wait_for

    with Cluster() as cluster:                     # API on 127.0.0.1:<port>, kubelet, OCJ CRD applied
        cluster.kubelet.script(name_prefix="job-", exit_code=1, termination_message="boom")
        operator = cluster.start_operator()        # a separate process with KUBECONFIG
        cluster.kubectl("apply", "-f", "job.yaml")
        wait_for(lambda: cluster.pods(), 30)
        cluster.faults.add("error", code=503, probability=0.3, times=None)  # faults.py; docs/faults.md
        cluster.restart_api(down=3.0)              # same port, objects and resourceVersions

Known gaps versus a real kube-apiserver (deliberate; tests must not depend on them):
- no authn/authz of requests (any token works), no admission webhooks, no TLS; RBAC objects are stored and
  SubjectAccessReviews are answered by evaluating them as the RBAC authorizer does (rbac.py); the
  aggregation layer is a proxy registered in `emulator.aggregated` (aggregator.py), not an APIService;
- CRD validation covers OpenAPI type/enum/bounds/pattern/required and pruning, not CEL rules
  (`x-kubernetes-validations`), defaults, formats, or ratcheting; one stored version, no conversion;
- server-side apply is a merge without managedFields (no field ownership, no conflicts);
  strategic merge patch knows only the core merge keys used here;
- no aggregated discovery or OpenAPI documents (kubectl falls back; `kubectl explain` fails);
- watches have no bookmarks except sendInitialEvents' and no server-chosen timeout;
- resourceVersion is one global counter (as with etcd), list pagination is offset-based;
- events.k8s.io/v1 and core/v1 Events share storage with a simplified conversion;
- the kubelet has no probes, init containers, volumes or resource limits, and one fixed node.
"""

from .cluster import Cluster, OperatorProcess, ocj_crd, wait_for, write_kubeconfig
from .emulator import ApiCall, EmulatedApiServer, Fault
from .faults import FaultPlan, FaultRule, Listener
from .kubelet import Script, SimulatedKubelet

__all__ = [
    "ApiCall",
    "Cluster",
    "EmulatedApiServer",
    "Fault",
    "FaultPlan",
    "FaultRule",
    "Listener",
    "OperatorProcess",
    "Script",
    "SimulatedKubelet",
    "ocj_crd",
    "wait_for",
    "write_kubeconfig",
]
