"""Run the emulated cluster (API server + simulated kubelet) standalone, e.g. for `make demo`.

    python hack/demo_cluster.py --port 8001 --kubeconfig .cache/demo/kubeconfig
    KUBECONFIG=.cache/demo/kubeconfig kubectl get ocj

Prints `ready <url> <kubeconfig>` on stdout once serving (for scripts to wait on), then
serves until SIGINT or SIGTERM and exits 0 after shutting down cleanly.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import Cluster  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=REPO / ".cache" / "demo" / "kubeconfig",
        help="where to write the admin kubeconfig (server https://127.0.0.1:PORT, its CA, a system:masters cert)",
    )
    parser.add_argument(
        "--operator-kubeconfig",
        type=Path,
        default=None,
        help="also write a token kubeconfig of the chart's ServiceAccount (the chart's RBAC applied) here",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="kubelet sandboxes and logs (default: temp)")
    parser.add_argument("--no-kubelet", action="store_true", help="serve the API only; Pods stay Pending")
    parser.add_argument("--no-crd", action="store_true", help="do not apply the OpenClawCronJob CRD")
    parser.add_argument(
        "--execute-commands", action="store_true", help="run `command` payload Pods locally (default: simulate success)"
    )
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    cluster = Cluster(
        args.workdir,
        port=args.port,
        kubelet=not args.no_kubelet,
        install_crd=not args.no_crd,
        kubelet_options={"execute_commands": args.execute_commands},
    )
    cluster.start()
    try:
        args.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cluster.kubeconfig, args.kubeconfig)
        if args.operator_kubeconfig is not None:
            args.operator_kubeconfig.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cluster.operator_kubeconfig(), args.operator_kubeconfig)
        print(f"ready {cluster.url} {args.kubeconfig}", flush=True)
        print(f"export KUBECONFIG={args.kubeconfig}", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
