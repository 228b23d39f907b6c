"""The simulated kubelet's runner command for the image tier: the run Pod's runner, from the image.

The kubelet calls this with the Pod's resolved env (the OPENCLAW_* variables) and the host path of
the Pod's termination-log file; it execs `<engine> run` of `openclaw-cron-runner` in the image,
hardened as a run Pod is, the file mounted at /dev/termination-log (where the chart's Pods have it).
OCJ_TEST_ENGINE (JSON argv) and OCJ_TEST_IMAGE come from the kubelet's extra env.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# image_engine imports support.cluster: the kubelet starts this as a script, with only tests/image on the path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from image_engine import hardened

RESULT_ENV = "OPENCLAW_CRON_RESULT_PATH"


def main() -> None:
    cli: list[str] = json.loads(os.environ["OCJ_TEST_ENGINE"])
    result = os.environ[RESULT_ENV]
    os.chmod(result, 0o666)  # the runner in the container is UID 65532, the file the kubelet's (root)
    argv = [*cli, "run", "--rm", *hardened(cli), "-v", f"{result}:/dev/termination-log"]
    argv += ["-e", f"{RESULT_ENV}=/dev/termination-log"]
    # only the names: the values (the hooks token among them) stay out of argv
    argv += [a for k in sorted(os.environ) if k.startswith("OPENCLAW_") and k != RESULT_ENV for a in ("-e", k)]
    argv += ["--entrypoint", "openclaw-cron-runner", os.environ["OCJ_TEST_IMAGE"], *sys.argv[1:]]
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
