# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The proxy agent in its image (HAProxy 3.0) against a real Consul and real web containers.

Services are registered straight into Consul with TTL checks, so each test controls health
exactly; reloads are counted by HAProxy's master itself (``show proc``).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request

import pytest
import support
from support import docker, free_port, wait_for

pytestmark = pytest.mark.e2e

SHOW_PROC = ("import socket;s=socket.socket(socket.AF_UNIX);s.connect('/run/haproxy/master.sock');"
             "s.sendall(b'show proc\\n');s.shutdown(1);print(s.makefile().read())")


class Stack:
    def __init__(self, resources, consul, agent_image, images):
        self.consul = consul
        self.network = consul.network
        self.webs = [resources.run(f"pa-web{i}", images["demo_app_image"], network=self.network,
                                   labels={"SERVICE_IGNORE": "true"}) for i in (1, 2, 3)]
        self.ips = [support.container_ip(web, self.network) for web in self.webs]
        self.names = [docker("inspect", "-f", "{{.Config.Hostname}}", web) for web in self.webs]
        self.port = free_port()
        self.proxy = resources.run(
            "pa-proxy", agent_image, "proxy", f"--consul={consul.internal_url}", "--domains=test",
            "--spare-backends=3", "--confirm-after=2", "--fault-hold=8", "--check-interval=500ms", "--rename-after=0",
            network=self.network, labels={"SERVICE_IGNORE": "true"},
            options=("-p", f"127.0.0.1:{self.port}:80"))

    def get(self, host, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/", headers={"Host": host, **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.read().decode(), resp.headers
        except urllib.error.HTTPError as exc:
            return exc.code, "", exc.headers

    def hostname(self, host, headers=None):
        status, body, _unused = self.get(host, headers)
        match = re.search(r"My hostname is\s*([\w.-]+)", body)
        return match.group(1) if status == 200 and match else None

    def seen(self, host, count=12):
        return {self.hostname(host) for _unused in range(count)} - {None}

    def register(self, service, iid, web, tags=(), status="passing"):
        self.consul.put("/v1/agent/service/register", {
            "ID": iid, "Name": service, "Tags": list(tags), "Address": self.ips[web], "Port": 80,
            "Check": {"CheckID": f"ttl-{iid}", "TTL": "600s", "Status": status}})

    def set_health(self, iid, status):
        self.consul.put(f"/v1/agent/check/{'pass' if status == 'passing' else 'fail'}/ttl-{iid}")

    def reloads(self):
        answer = docker("exec", self.proxy, "python3", "-c", SHOW_PROC)
        master = [line.split() for line in answer.splitlines() if " master " in line]
        return int(master[0][2])

    def logs(self):
        return subprocess.run(["docker", "logs", self.proxy], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False).stdout


@pytest.fixture(scope="module")
def stack(resources, consul_factory, agent_image, images):
    network = resources.network("pa-net")
    consul = consul_factory(network, "pa-consul")
    found = Stack(resources, consul, agent_image, images)
    found.register("www", "w0", 0, ["hello"])
    wait_for("the proxy to route www.hello.test", lambda: found.hostname("www.hello.test"), timeout=60)
    return found


def test_membership_and_health_changes_need_no_reload(stack):
    before = stack.reloads()
    stack.register("www", "w1", 1, ["hello"])
    wait_for("both replicas", lambda: stack.seen("www.hello.test") == set(stack.names[:2]), timeout=10)
    stack.set_health("w0", "critical")
    wait_for("only the passing replica", lambda: stack.seen("www.hello.test") == {stack.names[1]}, timeout=10)
    stack.set_health("w0", "passing")
    wait_for("both again", lambda: stack.seen("www.hello.test") == set(stack.names[:2]), timeout=10)
    stack.register("www", "w1", 1, ["hello", "weight=0"])
    wait_for("weight 0 takes w1 out", lambda: stack.seen("www.hello.test") == {stack.names[0]}, timeout=10)
    assert stack.reloads() == before, "membership, health and weight changes went through the Runtime API"


def test_a_new_service_is_routed_without_a_reload(stack):
    before = stack.reloads()
    started = time.monotonic()
    stack.register("api_demo", "a0", 2)
    wait_for("api.demo.test", lambda: stack.hostname("api.demo.test") == stack.names[2], timeout=10)
    assert stack.hostname("api.demo") == stack.names[2], "the bare host too"
    print(f"new service routed after {time.monotonic() - started:.2f}s")
    assert stack.reloads() == before


def test_the_spare_pool_grows_when_a_burst_of_new_services_uses_it_up(stack):
    # --spare-backends=3. Refilled to 3 on every reload, 12 new services would need 3 reloads;
    # doubled (3 -> 6 -> 12) they need at most 2, whatever earlier tests left of the pool.
    before, logged = stack.reloads(), stack.logs().count("the running config declares 6 spare backends")
    for i in range(12):
        stack.register(f"burst{i}", f"b{i}", i % 3)
        wait_for(f"burst{i}.test", lambda i=i: stack.hostname(f"burst{i}.test") == stack.names[i % 3], timeout=15)
    assert stack.reloads() - before <= 2
    assert stack.logs().count("the running config declares 6 spare backends") == logged + 1
    assert all(stack.hostname(f"burst{i}.test") == stack.names[i % 3] for i in range(12)), "all still routed"


def test_sticky_session_reloads_once_and_sticks(stack):
    before = stack.reloads()
    stack.register("shop", "s0", 0, ["sticky_session"])
    stack.register("shop", "s1", 1, ["sticky_session"])
    wait_for("both shop servers", lambda: stack.seen("shop.test") == set(stack.names[:2]), timeout=15)
    assert stack.reloads() >= before + 1, "a backend with a cookie directive needs a reload"
    status, _unused, headers = stack.get("shop.test")
    cookie = headers.get("Set-Cookie", "")
    assert status == 200 and cookie.startswith("SRVID="), cookie
    first = {stack.hostname("shop.test", {"Cookie": cookie.split(";")[0]}) for _unused in range(10)}
    assert len(first) == 1, "the cookie pins every request to one server"


def test_hostile_names_and_tags_never_stop_the_others(stack):
    stack.register("evil\nservice", "e0", 2, ["hello"])
    stack.register("www", "e1", 2, ["hello", "x\n    server evil 6.6.6.6:80", "#;'\" ", "maxconn=1 2"])
    stack.register("api_demo", "a1", 1, ["balance=roundrobin\nlisten x"])
    wait_for("the hostile instance joins with its bad tags dropped",
             lambda: stack.names[2] in stack.seen("www.hello.test", 20), timeout=10)
    assert stack.hostname("api.demo.test") in stack.names[1:3]
    logs = stack.logs()
    assert "service 'www': tag 'x\\n    server evil 6.6.6.6:80' dropped" in logs
    assert "service 'evil\\nservice' instance 'e0' dropped" in logs
    cfg = docker("exec", stack.proxy, "cat", "/etc/haproxy/autoproxy/haproxy.cfg")
    assert "6.6.6.6" not in cfg and "listen x" not in cfg
    for iid in ("e0", "e1", "a1"):
        stack.consul.put(f"/v1/agent/service/deregister/{iid}")


def test_consul_restart_keeps_the_last_known_good_routes(stack):
    wait_for("steady state", lambda: stack.hostname("www.hello.test"), timeout=10)
    stack.consul.restart()  # dev mode: it comes back empty
    assert json.dumps(stack.consul.get("/v1/catalog/services")).count("www") == 0
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        assert stack.hostname("www.hello.test") in stack.names, "kept serving while Consul came back empty"
        time.sleep(0.2)
    back = time.monotonic()
    stack.register("www", "w2", 2, ["hello"])
    stack.register("api_demo", "a0", 2)
    wait_for("convergence after Consul is back", lambda: stack.hostname("api.demo.test") == stack.names[2],
             timeout=5)
    print(f"converged {time.monotonic() - back:.2f}s after re-registration")
    # Once the fault hold is over and the emptiness is confirmed, the lost services do go.
    wait_for("www.hello.test served by the one re-registered instance only",
             lambda: stack.seen("www.hello.test") == {stack.names[2]}, timeout=20)
