# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The modules and filters against a real Consul agent, a real HAProxy binary and real HAProxy containers.

Runs each ansible-test integration target (tests/integration/targets/<name>) as a playbook, so
``make test`` needs neither Galaxy nor ansible-test, and executes every module's and filter's
EXAMPLES verbatim except for the few host-specific values listed in EXAMPLE_SUBSTITUTIONS.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile

import pytest
import yaml
from support import ROOT, RUN_ID, docker

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import write_files
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import render_haproxy_config

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
TARGETS = ("consul_service", "consul_catalog_info", "haproxy_config",
           "filter_service_tags", "filter_service_hosts", "filter_haproxy_backend_name")
EXAMPLE_FILES = [f"plugins/modules/{name}.py" for name in ("consul_service", "consul_catalog_info", "haproxy_config")]
EXAMPLE_FILES += [f"plugins/filter/{name}.py" for name in ("service_tags", "service_hosts", "haproxy_backend_name")]


@pytest.fixture(scope="module")
def consul(resources, consul_factory):
    return consul_factory(resources.network("modules"), "modules-consul")


def run_playbook(playbook, env, tmp_path):
    path = tmp_path / "playbook.yml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    full_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                    ANSIBLE_ROLES_PATH=os.path.join(ROOT, "tests", "integration", "targets"), **env)
    proc = subprocess.run([ANSIBLE_PLAYBOOK, str(path)], capture_output=True, text=True, cwd=ROOT, env=full_env,
                          timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("target", TARGETS)
def test_integration_target(target, consul, haproxy_bin, agent_image, tmp_path):
    run_playbook([{"hosts": "localhost", "gather_facts": False, "roles": [target]}], {
        "AUTOPROXY_TEST_CONSUL_URL": consul.url,
        "AUTOPROXY_TEST_HAPROXY": haproxy_bin,
        "AUTOPROXY_TEST_AGENT_IMAGE": agent_image,
        "AUTOPROXY_TEST_LABEL": RUN_ID,
    }, tmp_path)


def examples_of(relative_path):
    with open(os.path.join(ROOT, relative_path), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "EXAMPLES":
            return node.value.value
    raise AssertionError(f"{relative_path} has no EXAMPLES")


@pytest.fixture()
def haproxy_container(resources, agent_image):
    """A real HAProxy (the agent image's 3.0) in master-worker mode, running from a directory on this host."""
    # A short path: the directory is bind-mounted, and paths show up in HAProxy's messages.
    config_dir = tempfile.mkdtemp(prefix="aptest-ex-")
    write_files(config_dir, render_haproxy_config({"backends": {}, "hosts": {}}))
    name = resources.run(f"examples-haproxy-{os.path.basename(config_dir)[-6:]}", agent_image,
                         "-W", "-S", "/run/haproxy/master.sock,level,admin", "-f", "/srv/haproxy/haproxy.cfg",
                         options=("--entrypoint", "haproxy", "-v", f"{config_dir}:/srv/haproxy"))
    yield name, config_dir
    docker("rm", "-f", name, check=False)
    subprocess.run(["rm", "-rf", config_dir], check=False)


def substitutions(haproxy_bin, container, config_dir, tmp_path):
    """Host-specific values in the EXAMPLES and what this test uses instead. Each must occur."""
    return {
        "plugins/modules/haproxy_config.py": [
            ("path: /etc/haproxy/autoproxy", f"path: {tmp_path}/etc-haproxy-autoproxy"),
            ("haproxy_binary: /usr/sbin/haproxy", f"haproxy_binary: {haproxy_bin}"),
            ("path: /srv/haproxy", f"path: {config_dir}"),
            ("container: haproxy", f"container: {container}"),
        ],
    }


@pytest.mark.parametrize("relative_path", EXAMPLE_FILES)
def test_examples_run(relative_path, consul, haproxy_bin, haproxy_container, tmp_path):
    text = examples_of(relative_path)
    container, config_dir = haproxy_container
    for old, new in substitutions(haproxy_bin, container, config_dir, tmp_path).get(relative_path, []):
        assert old in text, f"{relative_path}: the EXAMPLES no longer contain {old!r}; update this test"
        text = text.replace(old, new)
    tasks = yaml.safe_load(text)
    # The Consul modules' EXAMPLES talk to "the local agent": CONSUL_HTTP_ADDR points them at the test's.
    output = run_playbook([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}],
                          {"CONSUL_HTTP_ADDR": consul.url}, tmp_path)
    assert "failed=0" in output
