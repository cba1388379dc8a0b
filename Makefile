# `make demo` and `make test` set up a local virtual environment once (.venv) and reuse it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean deps package deploy ui

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The Studio (ui/, built by Vite into the package; not in git). Rebuilt only when a file
# under ui/ is newer than the last build; `npm ci` only when package-lock.json changed.
STUDIO := shared/orchestrate/studio_dist
UI_SOURCES := $(shell find ui -path ui/node_modules -prune -o -type f -print 2>/dev/null)

ifneq ($(wildcard ui/package.json),)
ui: $(STUDIO)/.built

$(STUDIO)/.built: $(UI_SOURCES) ui/node_modules/.package-lock.json
	cd ui && npm run build
	test -f $(STUDIO)/index.html || { echo "the build did not write $(STUDIO)/index.html"; exit 1; }
	touch $@

ui/node_modules/.package-lock.json: ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund
else
ui:
	@echo "ui/package.json not found: the Studio is not built (serve answers / with a hint)"
endif

demo: $(STAMP) ui
	$(BIN)/orchestrate run examples/marketing.yaml --mock

test: $(STAMP) ui
	$(BIN)/mypy
	@# The Studio's unit tests (vitest: YAML card edits, word diff, event stream)
	if [ -d ui/node_modules ]; then cd ui && npx vitest run; fi
	$(BIN)/python -m pytest -q

BENCHMARKS := engine_overhead store_overhead wide throughput cold_start api_latency template_render studio watchers

bench: $(STAMP) ui
	for b in $(BENCHMARKS); do $(BIN)/python bench/$$b.py || exit 1; echo; done

clean:
	rm -rf $(VENV) .pytest_cache $(STUDIO) ui/node_modules

# AWS (docs/deploy.md). The functions run python3.13 on arm64 (serverless.yml); `deps`
# installs their third-party dependencies for that platform into .build/deps, which the
# package includes. boto3 is not listed: the Lambda runtime provides it.
LAMBDA_PYTHON := 3.13
LAMBDA_PLATFORMS := --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64
LAMBDA_DEPS := 'pydantic>=2.7' 'pyyaml>=6.0' 'jinja2>=3.1' 'openai>=1.50' 'python-dotenv>=1.0' \
	'psycopg[binary]>=3.2' 'psycopg-pool>=3.2' 'fastapi>=0.115' 'mangum>=0.19' \
	'pyjwt[crypto]>=2.9' 'cryptography>=42' 'standardwebhooks>=1.0' 'aws-lambda-powertools>=3'
# The CLI, pinned as in tests/deploy/test_serverless.py, installed in the same cache.
OSLS_VERSION := 4.3.1
OSLS := .cache/deploy/node_modules/.bin/osls
STAGE ?= dev
REGION ?= us-east-1

deps: $(STAMP)
	rm -rf .build/deps
	$(BIN)/python -m pip install --quiet --no-compile --only-binary=:all: --target .build/deps \
		--implementation cp --python-version $(LAMBDA_PYTHON) $(LAMBDA_PLATFORMS) $(LAMBDA_DEPS)
	@# Bytecode for the runtime's Python saves compiling at every cold start; unchecked-hash
	@# because the package's zip entries carry no source timestamps.
	if python$(LAMBDA_PYTHON) -c '' 2>/dev/null; then \
		python$(LAMBDA_PYTHON) -m compileall -q --invalidation-mode unchecked-hash .build/deps; \
	else echo "python$(LAMBDA_PYTHON) not found: dependencies ship without bytecode"; fi

$(OSLS):
	npm install --no-audit --no-fund --prefix .cache/deploy osls@$(OSLS_VERSION)

package: ui deps $(OSLS)
	$(OSLS) package --stage $(STAGE) --region $(REGION)

deploy: ui deps $(OSLS)
	$(OSLS) deploy --stage $(STAGE) --region $(REGION)
