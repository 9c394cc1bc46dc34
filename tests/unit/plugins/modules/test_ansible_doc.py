# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``ansible-doc`` renders every module and filter of the collection (as users will call it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
ANSIBLE_DOC = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
PLUGINS = [("module", name) for name in ("consul_service", "consul_catalog_info", "haproxy_config")] + [
    ("filter", name) for name in ("service_tags", "service_hosts", "haproxy_backend_name")
]


def ansible_doc(*args):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    # ansible-test runs module tests with a PYTHONPATH limited to what modules may import;
    # ansible-doc is a controller program and needs its own.
    env.pop("PYTHONPATH", None)
    return subprocess.run([ANSIBLE_DOC, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
                          check=False)


@pytest.mark.parametrize(("kind", "name"), PLUGINS)
def test_ansible_doc_renders(kind, name):
    proc = ansible_doc("-t", kind, f"autoproxy.stack.{name}")
    assert proc.returncode == 0, proc.stderr
    assert f"autoproxy.stack.{name}" in proc.stdout
    assert "EXAMPLES" in proc.stdout and "RETURN VALUES" in proc.stdout
    assert "[WARNING]" not in proc.stderr, proc.stderr


def test_ansible_doc_lists_them_all():
    found = set()
    for kind in ("module", "filter"):
        proc = ansible_doc("-t", kind, "--list", "--json", "autoproxy.stack")
        assert proc.returncode == 0, proc.stderr
        found |= {(kind, fqcn.rsplit(".", 1)[1]) for fqcn in json.loads(proc.stdout)}
    assert set(PLUGINS) <= found
