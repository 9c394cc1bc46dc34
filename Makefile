# Two entry points for a fresh Docker host (see README.md):
#   make demo   deploy the stack and the demo app on this host
#   make test   run every test: lint, unit, sanity, end to end (with the integration targets), molecule
# Both create .venv and install what they need; images come from a registry when one
# answers, else from the offline kit in images/offline (built once, reused while unchanged).
#
# The parts of `make test`, cheapest first:
#   lint          ruff, shell syntax, yamllint, changelog fragments, ansible-lint (production profile)
#   unit          ansible-test units: tests/unit as the installed collection (quick loop: .venv/bin/pytest tests/unit)
#   sanity        ansible-test sanity, no ignore files
#   integration   ansible-test integration over tests/integration/targets (skipped when there are none)
#   e2e           pytest tests/e2e: the built tarball deploys the real stack
#   molecule      molecule test: site.yml converges, a second run changes nothing, verify.yml checks it
# ansible-test runs on a copy laid out as ansible_collections/autoproxy/stack (tests/sanity/ansible-test.sh).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# The image choice (images/select-images) lives in the checkout's inventory, so every
# ansible-playbook run sees it; kept out of git and out of the collection tarball.
IMAGE_VARS := inventory/group_vars/all/images.yml
ANSIBLE_TEST := VENV_BIN=$(BIN) tests/sanity/ansible-test.sh

.PHONY: demo scale teardown test lint ansible-lint unit sanity integration e2e molecule images venv clean

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
	$(BIN)/ansible-playbook playbooks/site.yml

scale: venv images
	$(BIN)/ansible-playbook playbooks/scale.yml -e web_replicas=$(or $(N),1)

teardown: venv
	$(BIN)/ansible-playbook playbooks/teardown.yml

# The integration targets run inside e2e (tests/e2e/test_modules.py starts their Consul and HAProxy);
# `make integration` runs them through ansible-test given AUTOPROXY_TEST_CONSUL_URL etc.
test: lint unit sanity e2e molecule

lint: venv ansible-lint
	$(BIN)/ruff check .
	bash -n images/select-images images/offline/build .ci/run tests/sanity/ansible-test.sh
	$(BIN)/yamllint --strict .
	$(BIN)/antsibull-changelog lint

# Roles, playbooks, molecule and the modules' and filters' EXAMPLES; settings in .ansible-lint.
ansible-lint: venv
	$(BIN)/ansible-lint

unit: venv
	$(ANSIBLE_TEST) units

sanity: venv
	$(ANSIBLE_TEST) sanity

integration: venv images
	$(ANSIBLE_TEST) integration

e2e: venv images
	AUTOPROXY_IMAGE_VARS=$(CURDIR)/$(IMAGE_VARS) $(BIN)/pytest -v tests/e2e

molecule: venv images
	$(BIN)/molecule test

clean:
	rm -rf $(VENV) .cache tests/output autoproxy-stack-*.tar.gz $(IMAGE_VARS)
