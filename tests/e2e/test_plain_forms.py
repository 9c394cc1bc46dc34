# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The collection's own interface without make: on a host prepared like `make demo` prepares it
(images/select-images has written the image choice into the checkout's inventory), the plain
`ansible-playbook playbooks/site.yml`, `playbooks/scale.yml -e web_replicas=N` and
`playbooks/teardown.yml`, the same as `autoproxy.stack.site` etc. from the installed tarball, and
`--check` on a fresh and on a converged host.

No image variable is passed: only the variables that keep this stack apart from a demo running
beside it (prefix, host ports, agent image tag). Torn down afterwards, also on failure.
"""

from __future__ import annotations

import os
import re
import subprocess

import playbook_runs
import pytest
import support
from support import ROOT, docker, free_port, wait_for

pytestmark = pytest.mark.e2e

PREFIX = "applain"
AGENT_IMAGE = f"autoproxy/agent:{PREFIX}"
PROXY_PORT = free_port()
CONSUL_PORT = free_port()
APART = ["-e", f"autoproxy_prefix={PREFIX}", "-e", "proxy_http_host_ip=127.0.0.1",
         "-e", f"proxy_http_host_port={PROXY_PORT}", "-e", f"consul_http_host_port={CONSUL_PORT}",
         "-e", f"agent_image_tag={PREFIX}"]
# The checkout as a user has it after `make demo`: its ansible.cfg (inventory, collections_path).
CHECKOUT = {"ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg")}


def checkout(*args, expect_failure=False):
    env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_COLLECTIONS_PATH"}
    return playbook_runs.run([*args, *APART], env=dict(env, **CHECKOUT), expect_failure=expect_failure)


def made_by_stack():
    """Containers and networks carrying the stack's label."""
    label = f"label=autoproxy.stack.project={PREFIX}"
    return docker("ps", "-aq", "--filter", label).split() + docker("network", "ls", "-q", "--filter", label).split()


def web_containers():
    return sorted(docker("ps", "-a", "--filter", f"label=autoproxy.stack.app={PREFIX}_web",
                         "--format", "{{.Names}}").split())


def hello_hostname():
    status, body = support.http_get(f"http://127.0.0.1:{PROXY_PORT}/", "www.hello.test")
    match = re.search(r"My hostname is\s*([\w.-]+)", body)
    return match.group(1) if status == 200 and match else None


@pytest.fixture(scope="module")
def prepared_host():
    """What `make demo` leaves before its playbook runs: the image choice in the inventory.

    The agent image of this stack is removed, so the first run has to build it (check mode on a
    fresh host must report that build).
    """
    subprocess.run([os.path.join(ROOT, "images", "select-images")], check=True, timeout=1800)
    assert os.path.exists(os.path.join(ROOT, "inventory", "group_vars", "all", "images.yml"))
    checkout("playbooks/teardown.yml")
    docker("image", "rm", AGENT_IMAGE, check=False)
    yield
    checkout("playbooks/teardown.yml", "-e", "autoproxy_remove_images=true")


def test_check_mode_on_a_fresh_host_reports_and_changes_nothing(prepared_host):
    output = checkout("playbooks/site.yml", "--check")
    counters = playbook_runs.recap(output)
    assert counters["failed"] == 0
    # network, volume, Consul, agent image, proxy, registrator, demo app
    assert counters["changed"] >= 7, counters
    assert f"{AGENT_IMAGE} would be built" in output
    counters = playbook_runs.recap(checkout("playbooks/scale.yml", "--check", "-e", "web_replicas=2"))
    assert counters["failed"] == 0 and counters["changed"] >= 1, counters
    assert made_by_stack() == [], "check mode created something"
    assert docker("image", "ls", "-q", AGENT_IMAGE) == "", "check mode built the agent image"


def test_plain_site_deploys_the_stack(prepared_host):
    output = checkout("playbooks/site.yml")
    assert re.search(r"www\.hello\.test -> hello_www_backend -> \d+\.\d+\.\d+\.\d+:80", output)
    assert "Building " + AGENT_IMAGE in output, "the long build says what it does before it starts"
    wait_for("the hello page", hello_hostname)


def test_check_mode_on_a_converged_host(prepared_host):
    counters = playbook_runs.recap(checkout("playbooks/site.yml", "--check"))
    assert counters["failed"] == 0 and counters["changed"] == 0, counters
    output = checkout("playbooks/scale.yml", "--check", "-e", "web_replicas=3")
    counters = playbook_runs.recap(output)
    assert counters["failed"] == 0 and counters["changed"] == 1, counters
    assert re.search(r"changed: \[localhost\] => \(item=3\)", output), "the third replica would be created"
    assert web_containers() == [f"{PREFIX}_web_1"]


def test_plain_scale_converges(prepared_host):
    checkout("playbooks/scale.yml", "-e", "web_replicas=2")
    assert web_containers() == [f"{PREFIX}_web_1", f"{PREFIX}_web_2"]
    seen = set()
    wait_for("2 distinct hostnames through the proxy",
             lambda: seen.add(hello_hostname()) or len(seen - {None}) == 2, timeout=30)
    counters = playbook_runs.recap(checkout("playbooks/scale.yml", "--check", "-e", "web_replicas=1"))
    assert counters["failed"] == 0 and counters["changed"] == 1, counters
    assert len(web_containers()) == 2, "check mode removed a replica"


@pytest.fixture(scope="module")
def installed(prepared_host, tmp_path_factory):
    """The collection installed from its tarball; run in the checkout, whose inventory holds the image choice."""
    collections = playbook_runs.install_collection(tmp_path_factory.mktemp("installed"))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, **CHECKOUT)
    galaxy = os.path.join(playbook_runs.BIN, "ansible-galaxy")
    listed = subprocess.run([galaxy, "collection", "list", "autoproxy.stack"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True).stdout
    assert collections in listed and ".collections" not in listed, listed
    return lambda *args: playbook_runs.run([*args, *APART], env=env)


def test_installed_collection_runs_the_same_forms(installed):
    installed("autoproxy.stack.scale", "-e", "web_replicas=1")
    assert web_containers() == [f"{PREFIX}_web_1"]
    counters = playbook_runs.recap(installed("autoproxy.stack.site"))
    # The agent image's inputs hash the same from the tarball as from the checkout: no rebuild.
    assert counters["failed"] == 0 and counters["changed"] == 0, counters
    counters = playbook_runs.recap(installed("autoproxy.stack.site", "--check"))
    assert counters["failed"] == 0 and counters["changed"] == 0, counters


def test_installed_teardown_then_plain_teardown(installed):
    installed("autoproxy.stack.teardown")
    assert made_by_stack() == []
    counters = playbook_runs.recap(checkout("playbooks/teardown.yml"))
    assert counters["failed"] == 0 and counters["changed"] == 0, counters
