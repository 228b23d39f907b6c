# syntax=docker/dockerfile:1
# OpenClaw Cron Operator image: `openclaw-cron-operator` (entrypoint) and `openclaw-cron-runner`
# (run Pods of agentTurn/systemEvent jobs use this same image). Build: make image.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: install the package and its dependencies into a self-contained venv -------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, read from pyproject.toml: their layer is reused until pyproject.toml changes.
# Size (the image stays small): kubernetes/aio goes (the asyncio twin of the client, ~70 MB, never
# imported here) and third-party code is kept as bytecode only (tracebacks there keep file and line,
# not the source text); pip and setuptools stay until the package is in, then leave the venv.
# Bytecode is compiled now because the image runs on a read-only root filesystem.
COPY pyproject.toml ./
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        > requirements.txt \
    && pip install --no-cache-dir --no-compile -r requirements.txt \
    && site=$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
    && keep='/(pip|setuptools|pkg_resources|_distutils_hack)/' \
    && rm -rf "$site/kubernetes/aio" \
    && python3 -m compileall -q -j 0 -b -x "$keep" "$site" \
    && find "$site" -name '*.py' -regextype posix-extended ! -regex ".*$keep.*" -delete \
    && find "$site" -name __pycache__ -regextype posix-extended ! -regex ".*$keep.*" -prune -exec rm -rf {} +
# This package keeps its source.
COPY README.md ./
COPY operator/ operator/
RUN pip install --no-cache-dir --no-compile --no-deps . \
    && pip uninstall --yes pip setuptools \
    && python3 -m compileall -q -j 0 "$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/openclaw_cron"

# --- final: the same slim base, the venv only, no compilers or pip caches ---------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="openclaw-cron-operator" \
      org.opencontainers.image.description="Kubernetes operator that runs OpenClaw cron jobs as Pods" \
      org.opencontainers.image.source="https://github.com/openclaw/openclaw-cron-operator" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=builder /opt/venv /opt/venv
# Non-root, numeric (so runAsNonRoot can verify it); matches the chart's securityContext. The user
# has a passwd entry (tools that ask "who am I" get an answer), yet nothing in the operator needs
# one: any UID a platform picks (OpenShift's random ones) works, HOME included.
RUN echo 'nonroot:x:65532:65532:nonroot:/tmp:/usr/sbin/nologin' >> /etc/passwd \
    && echo 'nonroot:x:65532:' >> /etc/group
ENV HOME=/tmp
USER 65532:65532
WORKDIR /tmp
# 8080: Prometheus metrics; 8081: kopf liveness (/healthz).
EXPOSE 8080 8081
ENTRYPOINT ["openclaw-cron-operator"]
