# Two entry points for a fresh Docker host (see README.md):
#   make demo   deploy the stack and the demo app on this host
#   make test   run every test: lint, unit, sanity, end to end (with the integration targets), molecule
# Both create .venv and install what they need; images come from a registry when one
# answers, else from the offline kit in images/offline (built once, reused while unchanged).
#
# The parts of `make test`, cheapest first:
#   lint          ruff, mypy (settings: mypy.ini), shell syntax, yamllint, changelog fragments,
#                 ansible-lint (production profile), galaxy-importer on the built tarball
#   unit          ansible-test units: tests/unit as the installed collection (quick loop: .venv/bin/pytest tests/unit)
#   oldest        the oldest ansible-core meta/runtime.yml allows: its ansible-test units and plugin sanity tests
#   sanity        ansible-test sanity, no ignore files
#   integration   ansible-test integration over tests/integration/targets (skipped when there are none)
#   e2e           pytest tests/e2e: the built tarball deploys the real stack
#   molecule      molecule test: site.yml converges, a second run changes nothing, verify.yml checks it
#   fleet-test    tests/fleet on a lab of 4 Docker hosts reached over SSH (fleet-up, pytest, fleet-down),
#                 then the Swarm files on a fresh lab
#
# The fleet lab (tests/fleet/README.md), by hand:
#   fleet-up      start a fresh lab and write .cache/fleet/inventory.yml (lab images are built once, kept)
#   fleet-down    remove every container, volume and network of the lab; safe to run any time
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

.PHONY: demo scale teardown test lint ansible-lint galaxy-importer unit oldest sanity integration e2e molecule images venv clean
.PHONY: fleet-up fleet-down fleet-test

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
test: lint unit oldest sanity e2e molecule fleet-test

lint: venv ansible-lint galaxy-importer
	$(BIN)/ruff check .
	$(BIN)/mypy
	bash -n images/select-images images/offline/build .ci/run tests/sanity/ansible-test.sh tests/fleet/lab/host/host-entrypoint.sh
	$(BIN)/yamllint --strict .
	$(BIN)/antsibull-changelog lint

# Roles, playbooks, molecule and the modules' and filters' EXAMPLES; settings in .ansible-lint.
ansible-lint: venv
	$(BIN)/ansible-lint

# The checker Galaxy runs on every upload, on the tarball `ansible-galaxy collection build` makes
# (settings and why: galaxy-importer.cfg). It reports some problems only as WARNING/ERROR lines and
# still exits 0: any such line fails here. Its report stays in tests/output/galaxy-importer/.
GALAXY_IMPORTER_DIR := tests/output/galaxy-importer
galaxy-importer: venv
	rm -rf $(GALAXY_IMPORTER_DIR) && mkdir -p $(GALAXY_IMPORTER_DIR)
	$(BIN)/ansible-galaxy collection build --output-path $(GALAXY_IMPORTER_DIR) .
	set -o pipefail; cd $(GALAXY_IMPORTER_DIR) && GALAXY_IMPORTER_CONFIG=$(CURDIR)/galaxy-importer.cfg \
		$(BIN)/python -m galaxy_importer.main autoproxy-stack-*.tar.gz | tee importer.log
	@if grep -E '^(WARNING|ERROR)' $(GALAXY_IMPORTER_DIR)/importer.log; then \
		echo "galaxy-importer: the lines above must go (full log: $(GALAXY_IMPORTER_DIR)/importer.log)" >&2; exit 1; fi

unit: venv
	$(ANSIBLE_TEST) units

# meta/runtime.yml's requires_ansible promises the oldest ansible-core it names: that release's
# ansible-test runs the unit tests and the sanity tests that hold plugins to it (their import,
# documentation and argument specs), in a second virtualenv with the latest patch release of it.
# ansible-lint is not among them: it refuses to run on ansible-core 2.17.
OLDEST_VENV ?= .venv-oldest
OLDEST_BIN := $(abspath $(OLDEST_VENV))/bin
OLDEST_TEST := VENV_BIN=$(OLDEST_BIN) ANSIBLE_TEST_TREE=$${TMPDIR:-/tmp}/autoproxy-stack-oldest-$$(printf '%s' "$(CURDIR)" | cksum | cut -d' ' -f1) tests/sanity/ansible-test.sh
$(OLDEST_VENV)/.installed: meta/runtime.yml tests/unit/requirements.txt | venv
	rm -rf $(OLDEST_VENV)
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_BIN)/pip install -q --disable-pip-version-check "ansible-core$$($(BIN)/python -c 'import re, sys, yaml; \
		spec = yaml.safe_load(open("meta/runtime.yml"))["requires_ansible"]; \
		low = re.search(r">=\s*(\d+)\.(\d+)", spec) or sys.exit(f"meta/runtime.yml: no lower bound in requires_ansible {spec!r}"); \
		print(f">={low[1]}.{low[2]}.0,<{low[1]}.{int(low[2]) + 1}")')"
	touch $@

oldest: $(OLDEST_VENV)/.installed
	$(OLDEST_BIN)/ansible --version | head -1
	$(OLDEST_TEST) units --requirements
	$(OLDEST_TEST) sanity --requirements --test compile --test import --test validate-modules --test ansible-doc

sanity: venv
	$(ANSIBLE_TEST) sanity

integration: venv images
	$(ANSIBLE_TEST) integration

e2e: venv images
	AUTOPROXY_IMAGE_VARS=$(CURDIR)/$(IMAGE_VARS) $(BIN)/pytest -v tests/e2e

molecule: venv images
	$(BIN)/molecule test

fleet-up: venv images
	$(BIN)/python tests/fleet/lab.py up

# Needs no venv: it must work whatever state a failed run left behind.
fleet-down:
	$(PYTHON) tests/fleet/lab.py down

# The lab is removed afterwards whatever the tests' outcome; the exit code is the tests'.
# The Swarm files get a lab of their own: their stack (Consul DNS on a fixed subnet, a Swarm,
# internal mode on the overlay) is not the one the other files deploy and tear down.
fleet-test: venv images
	$(BIN)/python tests/fleet/lab.py up
	AUTOPROXY_LAB_REQUIRED=1 $(BIN)/pytest -v tests/fleet -k 'not swarm'; status=$$?; \
	    $(BIN)/python tests/fleet/lab.py down; \
	    $(BIN)/python tests/fleet/lab.py up && AUTOPROXY_LAB_REQUIRED=1 $(BIN)/pytest -v tests/fleet -k swarm; \
	    swarm=$$?; $(BIN)/python tests/fleet/lab.py down; [ $$status = 0 ] && [ $$swarm = 0 ]

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .cache tests/output autoproxy-stack-*.tar.gz $(IMAGE_VARS)
