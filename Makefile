# Entry points of the project. `make run` starts the demo service, `make test` runs every test layer.
SHELL := /bin/bash
PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
# /usr/local/bin/docker may lack BuildKit; /usr/bin/docker (docker.io) has it built in.
, := ,
DOCKER ?= $(shell test -x /usr/bin/docker && echo /usr/bin/docker || echo docker)
HOST ?= 127.0.0.1
# The base image (image/): its name, the Debian base it builds FROM, the optional CA bundle given to
# pip and apt as a BuildKit secret (needed where pip does not trust the index otherwise).
IMAGE ?= c2cwsgiutils:latest
BASE_IMAGE ?= debian:bookworm-slim
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
PORT ?= 8080

.PHONY: help
help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: library/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/pip install --quiet --editable 'library[all]' --group library/pyproject.toml:dev
	$(BIN)/pip install --quiet --editable demo
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtual environment with the library and the dev tools

.PHONY: run
run: venv ## Start the demo service with gunicorn on http://$(HOST):$(PORT) (Ctrl-C stops it)
	cd demo && HOST=$(HOST) PORT=$(PORT) exec $(BIN)/python -m c2cdemo.run

.PHONY: lint
lint: venv ## Lint, check formatting and type-check the library
	cd library && $(BIN)/ruff check c2cwsgiutils tests
	cd library && $(BIN)/ruff format --check c2cwsgiutils tests
	cd library && $(BIN)/mypy
	cd demo && $(BIN)/ruff check c2cdemo && $(BIN)/ruff format --check c2cdemo
	cd image && $(BIN)/ruff check . && $(BIN)/ruff format --check .
	cd bench && $(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(MAKE) --no-print-directory -C acceptance lint BIN=$(BIN)

.PHONY: format
format: venv ## Fix what ruff can fix and format the code
	cd library && $(BIN)/ruff check --fix c2cwsgiutils tests; $(BIN)/ruff format c2cwsgiutils tests

.PHONY: unit
unit: venv ## Run the library's tests with branch coverage
	@# The compose tests of the acceptance helpers run containers FROM the Debian base.
	@if $(DOCKER) info >/dev/null 2>&1; then $(MAKE) --no-print-directory debian-base; fi
	cd library && rm -f .coverage .coverage.* && \
		$(BIN)/coverage run -m pytest -p no:cacheprovider $(PYTEST_ARGS); status=$$?; \
		$(BIN)/coverage combine --quiet >/dev/null 2>&1; $(BIN)/coverage report --format=total | sed 's/^/branch coverage: /;s/$$/ %/'; exit $$status

# The library at the lowest versions it declares (library/constraints-lowest.txt), in its own venv.
VENV_LOWEST := $(CURDIR)/.venv-lowest
LOWEST_EXTRAS := standard,psycopg,broadcast,debug,oauth2,sentry,alembic,webserver,tests,test_images

$(VENV_LOWEST)/.installed: library/pyproject.toml library/constraints-lowest.txt
	test -x $(VENV_LOWEST)/bin/python || $(PYTHON) -m venv $(VENV_LOWEST)
	$(VENV_LOWEST)/bin/pip install --quiet --upgrade 'pip>=25.1'
	@echo "Installing the library with the lowest supported dependencies (library/constraints-lowest.txt)"
	$(VENV_LOWEST)/bin/pip install --quiet --constraint library/constraints-lowest.txt \
		--editable 'library[$(LOWEST_EXTRAS)]' --group library/pyproject.toml:tests
	touch $@

.PHONY: unit-lowest
unit-lowest: $(VENV_LOWEST)/.installed ## Run the library's tests with the lowest supported dependency versions
	cd library && $(VENV_LOWEST)/bin/python -m pytest -p no:cacheprovider -q $(PYTEST_ARGS)

.PHONY: template-test
template-test: venv ## Bake every variant of the service template (template/) and run each one's make test
	cd template && $(BIN)/ruff check hooks tests && $(BIN)/ruff format --check hooks tests
	@if $(DOCKER) info >/dev/null 2>&1; then $(MAKE) --no-print-directory image; fi
	cd template && DOCKER=$(DOCKER) IMAGE=$(IMAGE) REQUIRE_DOCKER=$(REQUIRE_DOCKER) \
		$(BIN)/pytest -p no:cacheprovider -q tests $(PYTEST_ARGS)

.PHONY: test
test: lint unit unit-lowest template-test image-test acceptance ## Run every test layer (lint, types, unit at the latest and the lowest versions, real-server and container tests)

.PHONY: debian-base
debian-base: ## Build $(BASE_IMAGE) with debootstrap when it is missing (no registry on the build machines)
	@if ! $(DOCKER) image inspect $(BASE_IMAGE) >/dev/null 2>&1; then \
		echo "$(BASE_IMAGE) is not here and there may be no registry: building it with debootstrap (image/build-debian-base.sh)"; \
		DOCKER=$(DOCKER) image/build-debian-base.sh $(BASE_IMAGE); \
	fi

.PHONY: image
image: debian-base ## Build the base image $(IMAGE) (and $(BASE_IMAGE) with debootstrap when it is missing)
	@echo "Building $(IMAGE) from image/Dockerfile$(if $(wildcard $(CA_BUNDLE)), with the CA bundle $(CA_BUNDLE) as a build secret)"
	@previous=$$($(DOCKER) image inspect --format '{{.Id}}' $(IMAGE) 2>/dev/null); \
	DOCKER_BUILDKIT=1 $(DOCKER) build --progress=plain --file image/Dockerfile --tag $(IMAGE) \
		--build-arg BASE_IMAGE=$(BASE_IMAGE) \
		--build-arg VERSION=$$(sed -n 's/^version = "\(.*\)"/\1/p' library/pyproject.toml) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
		$(if $(wildcard $(CA_BUNDLE)),--secret id=ca$(,)src=$(CA_BUNDLE)) . >/tmp/c2cwsgiutils-image-build.log 2>&1 \
		|| { tail -40 /tmp/c2cwsgiutils-image-build.log; exit 1; }; \
	if [ -n "$$previous" ] && [ "$$previous" != "$$($(DOCKER) image inspect --format '{{.Id}}' $(IMAGE))" ]; then \
		$(DOCKER) image rm "$$previous" >/dev/null 2>&1 || true; \
	fi
	@$(DOCKER) image inspect --format '$(IMAGE): {{.Size}} bytes' $(IMAGE)

.PHONY: image-test
image-test: venv ## Build the image and run the container tests (skipped when no Docker daemon answers, unless REQUIRE_DOCKER=1)
	@if ! $(DOCKER) info >/dev/null 2>&1; then \
		if [ "$(REQUIRE_DOCKER)" = 1 ]; then echo "image-test: no Docker daemon answers ($(DOCKER) info)"; exit 1; fi; \
		echo "image-test: SKIPPED, no Docker daemon answers ($(DOCKER) info); .ci/run starts one"; exit 0; \
	fi; \
	$(MAKE) --no-print-directory image && \
	DOCKER=$(DOCKER) IMAGE=$(IMAGE) $(BIN)/pytest -p no:cacheprovider -q image/tests $(PYTEST_ARGS)

.PHONY: acceptance
acceptance: venv ## Build the acceptance stack FROM the base image and run its suite (acceptance/README.md)
	@if ! $(DOCKER) info >/dev/null 2>&1; then \
		if [ "$(REQUIRE_DOCKER)" = 1 ]; then echo "acceptance: no Docker daemon answers ($(DOCKER) info)"; exit 1; fi; \
		echo "acceptance: SKIPPED, no Docker daemon answers ($(DOCKER) info); .ci/run starts one"; exit 0; \
	fi; \
	$(MAKE) --no-print-directory image && \
	$(MAKE) --no-print-directory -C acceptance test DOCKER=$(DOCKER) IMAGE=$(IMAGE) BIN=$(BIN)

.PHONY: docs
docs: venv ## Regenerate the settings table of library/README.md from the code
	cd library && $(BIN)/python -c 'import re, pathlib; from c2cwsgiutils import _settings; \
		p = pathlib.Path("README.md"); t = p.read_text(); \
		table = _settings.reference(_settings.all_settings_classes()); \
		p.write_text(re.sub(r"(<!-- settings:begin -->\n).*?(<!-- settings:end -->)", lambda m: m.group(1) + table + m.group(2), t, flags=re.S))'

.PHONY: bench
bench: venv ## Benchmark bare Pyramid against c2cwsgiutils with wrk on 127.0.0.1 (bench/README.md; not part of make test)
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python bench/run.py $(BENCH_ARGS)

.PHONY: bench-metrics
bench-metrics: venv ## Scrape time and file count of the multiprocess metrics with 4 gunicorn workers (bench/README.md)
	$(BIN)/python bench/prometheus_scrape.py

.PHONY: bench-broadcast
bench-broadcast: venv ## Round trip of a broadcast with answers across 4 gunicorn workers (bench/README.md)
	$(BIN)/python bench/broadcast.py $(BENCH_ARGS)
