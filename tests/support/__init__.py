"""Test harness: an emulated Kubernetes API server, a simulated kubelet, and a cluster runner.

    from support import Cluster, Script, Fault, wait_for

    with Cluster() as cluster:                     # HTTPS API on 127.0.0.1:<port>, kubelet, OCJ CRD applied
        cluster.kubelet.script(name_prefix="job-", exit_code=1, termination_message="boom")
        operator = cluster.start_operator()        # a process, as the chart's ServiceAccount under its RBAC
        alice = cluster.kubeconfig_for("alice", ("team-a",))   # or via="cert"; docs/faults.md
        cluster.kubectl("apply", "-f", "job.yaml")
        wait_for(lambda: cluster.pods(), 30)
        cluster.faults.add("error", code=503, probability=0.3, times=None)  # faults.py; docs/faults.md
        cluster.restart_api(down=3.0)              # same port, objects and resourceVersions

    Cluster(emulator_options={"costs": CostModel()})  # a real server's service times and seats (costs.py)

Known gaps versus a real kube-apiserver (deliberate; tests must not depend on them):
- authentication is client certificates and bearer tokens from the emulator's registry (no OIDC,
  webhook token authn, TokenRequest/TokenReview, bound-token expiry or anonymous auth unless
  `anonymous=True`); a client certificate the client CA did not sign fails the TLS handshake
  instead of a 401; authorization is system:masters + RBAC (no Node authorizer: the kubelet has an
  RBAC binding; no admission, no NodeRestriction, no RBAC escalation checks on writing roles), and
  the bootstrap roles hold the built-in resources the emulator serves, not the whole set; no
  admission webhooks; the aggregation layer is a proxy registered in `emulator.aggregated`
  (aggregator.py), not an APIService;
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

from .authn import Identity, TokenRegistry
from .cluster import Cluster, OperatorProcess, ocj_crd, wait_for, write_kubeconfig
from .costs import CostModel
from .emulator import ApiCall, EmulatedApiServer, Fault
from .faults import FaultPlan, FaultRule, Listener
from .kubelet import Script, SimulatedKubelet

__all__ = [
    "ApiCall",
    "Cluster",
    "CostModel",
    "EmulatedApiServer",
    "Fault",
    "FaultPlan",
    "FaultRule",
    "Identity",
    "Listener",
    "OperatorProcess",
    "Script",
    "SimulatedKubelet",
    "TokenRegistry",
    "ocj_crd",
    "wait_for",
    "write_kubeconfig",
]
