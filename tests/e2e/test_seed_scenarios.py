# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The seed's scenarios end to end: the stack deployed with the collection's playbooks (from the
checkout) on the real Docker engine, asserted through the real HAProxy and Consul.

Health checking, the hello2 tags variant, internal load balancing and multiple versions. The
stack runs under its own prefix and free host ports and is torn down afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest
import support
from support import ROOT, docker, free_port, wait_for

pytestmark = pytest.mark.e2e

PREFIX = "apprx"
PROXY_PORT = free_port()
CONSUL_PORT = free_port()
BIN = os.path.dirname(sys.executable)
STACK_VARS = [
    "-e", f"autoproxy_prefix={PREFIX}",
    "-e", "proxy_http_host_ip=127.0.0.1",
    "-e", f"proxy_http_host_port={PROXY_PORT}",
    "-e", f"consul_http_host_port={CONSUL_PORT}",
    "-e", "agent_image_tag=apprx-test",
    "-e", json.dumps({"proxy_network_aliases": ["www.hello", "serviceb.prod"]}),
]


def playbook(name, *extra):
    image_vars = os.environ.get("AUTOPROXY_IMAGE_VARS")
    cmd = [os.path.join(BIN, "ansible-playbook"), os.path.join(ROOT, "playbooks", name + ".yml"), *STACK_VARS,
           *(["-e", "@" + image_vars] if image_vars else []), *extra]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=900, check=False)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        pytest.fail(f"ansible-playbook {name} failed with {proc.returncode} (output above)")
    return proc.stdout


def hostname(host):
    status, body = support.http_get(f"http://127.0.0.1:{PROXY_PORT}/", host)
    match = re.search(r"My hostname is\s*([\w.-]+)", body)
    return match.group(1) if status == 200 and match else None


def served(host, count=15):
    return {hostname(host) for _unused in range(count)} - {None}


def container_hostnames(app):
    names = docker("ps", "--filter", f"label=autoproxy.stack.app={PREFIX}_{app}", "--format", "{{.Names}}").split()
    return {name: docker("inspect", "-f", "{{.Config.Hostname}}", name) for name in names}


def passing(service):
    with urllib.request.urlopen(f"http://127.0.0.1:{CONSUL_PORT}/v1/health/service/{service}", timeout=5) as resp:
        entries = json.loads(resp.read())
    return {e["Service"]["Meta"].get("autoproxy_container"): all(c["Status"] == "passing" for c in e["Checks"])
            for e in entries}


@pytest.fixture(scope="module")
def stack():
    playbook("teardown")
    playbook("site")
    yield
    playbook("teardown")


def test_second_site_run_changes_nothing(stack):
    output = playbook("site")
    match = re.search(r"^localhost\s*:.*changed=(\d+)", output, re.MULTILINE)
    assert match and match.group(1) == "0", "a second site.yml run changes nothing"


def test_health_checking(stack):
    playbook("scale", "-e", "web_replicas=3")
    web = container_hostnames("web")
    assert len(web) == 3
    wait_for("three replicas served", lambda: served("www.hello.test", 20) == set(web.values()), timeout=30)
    docker("exec", f"{PREFIX}_web_2", "pkill", "php-fpm")
    wait_for("web_2 critical in Consul", lambda: passing("www").get(f"{PREFIX}_web_2") is False, timeout=40)
    others = {web[f"{PREFIX}_web_1"], web[f"{PREFIX}_web_3"]}
    wait_for("web_2 out of HAProxy", lambda: served("www.hello.test", 20) == others, timeout=10)
    statuses = [support.http_get(f"http://127.0.0.1:{PROXY_PORT}/", "www.hello.test")[0] for _unused in range(30)]
    assert statuses == [200] * 30, "the other two keep serving"
    docker("rm", "-f", f"{PREFIX}_web_2")
    playbook("scale", "-e", "web_replicas=3")
    web = container_hostnames("web")
    wait_for("three serve again", lambda: served("www.hello.test", 20) == set(web.values()), timeout=30)


def test_hello2_service_tags(stack):
    playbook("hello2")
    web2 = set(container_hostnames("web2").values())
    web = set(container_hostnames("web").values())
    assert web2 and web and not web2 & web
    for host in ("www.world.dev.test", "hello.home.test", "hello.home", "www.world.dev.127.0.0.1.nip.io"):
        wait_for(f"{host} served by hello2 only", lambda h=host: served(h) == web2, timeout=20)
    assert served("www.hello.test", 20) == web, "www.hello reaches only the hello replicas"


def test_internal_load_balancing(stack, agent_image_for_client):
    fetch = "import urllib.request;print(urllib.request.urlopen('http://www.hello/', timeout=10).read().decode())"
    answer = docker("run", "--rm", "--network", PREFIX, "--label", f"autoproxy.stack.project={PREFIX}",
                    "--entrypoint", "python3", agent_image_for_client, "-c", fetch)
    assert re.search(r"My hostname is\s*([\w.-]+)", answer).group(1) in container_hostnames("web").values()


def test_multiple_versions(stack):
    playbook("multi_version", "-e", json.dumps({"prod_lines": ["prod", "feat42"]}))
    for line in ("prod", "feat42"):
        a = set(container_hostnames(f"servicea_{line}").values())
        b = set(container_hostnames(f"serviceb_{line}").values())
        assert len(a) == 1 and len(b) == 1
        for host in (f"servicea.{line}", f"servicea.{line}.test", f"servicea.{line}.example.com",
                     f"servicea.{line}.example.com.test"):
            wait_for(f"{host} -> serviceA.{line}", lambda h=host, a=a: served(h, 4) == a, timeout=20)
        wait_for(f"serviceb.{line}.test -> serviceB.{line}",
                 lambda line=line, b=b: served(f"serviceb.{line}.test", 4) == b, timeout=20)
    # serviceA reaches serviceB of its own line by its bare name, through the proxy's network alias.
    client = f"{PREFIX}_servicea_prod_1"
    answer = docker("exec", client, "php", "-r", 'echo file_get_contents("http://serviceb.prod/");')
    assert re.search(r"My hostname is\s*([\w.-]+)", answer).group(1) in container_hostnames("serviceb_prod").values()


@pytest.fixture(scope="module")
def agent_image_for_client():
    return "autoproxy/agent:apprx-test"
