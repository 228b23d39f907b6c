"""`kubectl openclaw console`: open the web console through a local `kubectl proxy`.

The console is served by the operator behind the API server (the archive's aggregated API), so
the browser needs a local port that forwards to the API server with this kubeconfig's
credentials: that is exactly `kubectl proxy`. It is started with the same kubeconfig/context,
on 127.0.0.1 only, and with `--accept-paths` limited to the console's pages and the one resource
its actions patch (OpenClawCronJobs); everything else answers 403 from the proxy itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import webbrowser
from urllib.parse import quote

from .archive import Archive
from .cluster import Ctx
from .common import EXIT_ERROR, EXIT_OK, CliError

#: What the console needs through the proxy: its pages (and the archive API), and the jobs it patches.
ACCEPT_PATHS = (
    r"^/apis/archive\.cron\.openclaw\.io/.*,"
    r"^/apis/cron\.openclaw\.io/v1alpha1/namespaces/[^/]+/openclawcronjobs/[^/]+$"
)
_STARTING = re.compile(r"Starting to serve on 127\.0\.0\.1:(\d+)")


def console_url(port: int, namespace: str, all_namespaces: bool = False) -> str:
    base = f"http://127.0.0.1:{port}/apis/archive.cron.openclaw.io/v1alpha1/namespaces/{quote(namespace)}/console"
    return base + ("/overview?scope=all" if all_namespaces else "/overview")


def proxy_argv(kubectl: str, port: int, kubeconfig: str | None, context: str | None) -> list[str]:
    argv = [kubectl, "proxy", f"--port={port}", "--address=127.0.0.1", f"--accept-paths={ACCEPT_PATHS}"]
    if kubeconfig:
        argv.append(f"--kubeconfig={kubeconfig}")
    if context:
        argv.append(f"--context={context}")
    return argv


def _can_open_browser() -> bool:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def cmd_console(ctx: Ctx) -> int:
    a = ctx.args
    kubectl = shutil.which(os.environ.get("KUBECTL", "kubectl"))
    if kubectl is None:
        raise CliError("console: kubectl is not on PATH (the console runs `kubectl proxy`)")
    namespace = a.namespace or ctx.cluster.namespace
    Archive(ctx).check_served()  # the console is part of the archive API: say so if it is missing
    kubeconfig = getattr(a, "kubeconfig", None)
    context = getattr(a, "context", None)
    proc = subprocess.Popen(
        proxy_argv(kubectl, a.port, kubeconfig, context),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = _STARTING.search(first)
    if match is None:
        proc.wait(timeout=10)
        rest = proc.stdout.read()
        print(f"error: kubectl proxy did not start: {(first + rest).strip()}", file=ctx.err)
        return EXIT_ERROR
    url = console_url(int(match.group(1)), namespace, a.all_namespaces)
    print(f"Console: {url}", file=ctx.out)
    print("(kubectl proxy is forwarding with your kubeconfig's credentials; Ctrl-C stops it)", file=ctx.out)
    ctx.out.flush()
    if not a.no_browser and _can_open_browser():
        webbrowser.open(url)
    try:
        for line in proc.stdout:
            print(line.rstrip(), file=ctx.err)
        return EXIT_OK if proc.wait() == 0 else EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
