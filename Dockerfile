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
COPY pyproject.toml README.md ./
COPY operator/ operator/
# Size (the image stays small): pip and setuptools leave the venv, so does kubernetes/aio (the asyncio
# twin of the client, ~70 MB, never imported here), and third-party code is kept as bytecode only
# (tracebacks there keep file and line, not the source text); this package keeps its source.
# Bytecode is compiled now because the image runs on a read-only root filesystem.
RUN pip install --no-cache-dir --no-compile . \
    && pip uninstall --yes pip setuptools \
    && site=$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
    && rm -rf "$site/kubernetes/aio" \
    && python3 -m compileall -q -j 0 "$site/openclaw_cron" \
    && python3 -m compileall -q -j 0 -b -x '/openclaw_cron/' "$site" \
    && find "$site" -name '*.py' ! -path '*/openclaw_cron/*' -delete \
    && find "$site" -name __pycache__ ! -path '*/openclaw_cron/*' -prune -exec rm -rf {} +

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
# Non-root, numeric (so runAsNonRoot can verify it); matches the chart's securityContext.
USER 65532:65532
WORKDIR /tmp
# 8080: Prometheus metrics; 8081: kopf liveness (/healthz).
EXPOSE 8080 8081
ENTRYPOINT ["openclaw-cron-operator"]
