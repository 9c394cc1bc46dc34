# Two entry points for a fresh Docker host (see README.md):
#   make demo   deploy the stack and the demo app on this host
#   make test   run every test (lint, unit, end to end against real Docker/Consul/HAProxy)
# Both create .venv and install what they need; images come from a registry when one
# answers, else from the offline kit in images/offline (built once, reused while unchanged).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
IMAGE_VARS := .cache/images.yml

.PHONY: demo scale teardown test lint unit e2e images venv clean

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-test.txt
	touch $@

images: $(IMAGE_VARS)
# Re-decided on every run: cheap when the images exist, and a cache never hides a missing image.
.PHONY: $(IMAGE_VARS)
$(IMAGE_VARS):
	images/select-images $@

demo: venv images
	$(BIN)/ansible-playbook playbooks/site.yml -e @$(IMAGE_VARS)

scale: venv images
	$(BIN)/ansible-playbook playbooks/scale.yml -e @$(IMAGE_VARS) -e web_replicas=$(or $(N),1)

teardown: venv
	$(BIN)/ansible-playbook playbooks/teardown.yml

test: lint unit e2e

lint: venv
	$(BIN)/ruff check .
	bash -n images/select-images images/offline/build .ci/run

unit: venv
	$(BIN)/pytest -q tests/unit

e2e: venv images
	AUTOPROXY_IMAGE_VARS=$(CURDIR)/$(IMAGE_VARS) $(BIN)/pytest -v tests/e2e

clean:
	rm -rf $(VENV) .cache tests/output autoproxy-stack-*.tar.gz
