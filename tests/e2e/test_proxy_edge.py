# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""An edge's proxy agent (HAProxy 3.0 in the agent image) on one Docker host: local-first
weights (docs/RULES.md §18) and servers that move to another address (§10).

Three web containers stand for three hosts' servers; the first one's address is given to the
proxy as its own host's (``--local-address``). Services are registered straight into Consul with
TTL checks, as in test_proxy_agent.py.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from collections import Counter

import pytest
import support
from support import docker, free_port, wait_for

pytestmark = pytest.mark.e2e

LOCAL_WEIGHT = 4
CHECK_INTERVAL = 4.0  # seconds; long, so that only a move, not a check, can bring a DOWN server back
REQUESTS = 200
SHOW_SERVERS = ("import socket;s=socket.socket(socket.AF_UNIX);s.connect('/run/haproxy/admin.sock');"
                "s.sendall(b'show servers state\\n');s.shutdown(1);print(s.makefile().read())")
SHOW_PROC = SHOW_SERVERS.replace("admin.sock", "master.sock").replace("show servers state", "show proc")


class Edge:
    def __init__(self, resources, consul, agent_image, images):
        self.consul = consul
        network = consul.network
        self.webs = [resources.run(f"edge-web{i}", images["demo_app_image"], network=network,
                                   labels={"SERVICE_IGNORE": "true"}) for i in (0, 1, 2)]
        self.ips = [support.container_ip(web, network) for web in self.webs]
        self.names = [docker("inspect", "-f", "{{.Config.Hostname}}", web) for web in self.webs]
        self.port = free_port()
        self.proxy = resources.run(
            "edge-proxy", agent_image, "proxy", f"--consul={consul.internal_url}", "--domains=test",
            "--spare-backends=4", "--rename-after=0", f"--check-interval={CHECK_INTERVAL:g}s", "--check-fall=1",
            f"--local-address={self.ips[0]}", f"--local-weight={LOCAL_WEIGHT}",
            network=network, labels={"SERVICE_IGNORE": "true"}, options=("-p", f"127.0.0.1:{self.port}:80"))

    def hostname(self, host):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/", headers={"Host": host})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                body = resp.read().decode()
        except urllib.error.HTTPError:
            return None
        match = re.search(r"My hostname is\s*([\w.-]+)", body)
        return match.group(1) if match else None

    def register(self, service, iid, web, tags=(), port=80):
        self.consul.put("/v1/agent/service/register", {
            "ID": iid, "Name": service, "Tags": list(tags), "Address": self.ips[web], "Port": port,
            "Check": {"CheckID": f"ttl-{iid}", "TTL": "600s", "Status": "passing"}})

    def servers(self):
        """HAProxy's ``show servers state`` rows by server name."""
        answer = docker("exec", self.proxy, "python3", "-c", SHOW_SERVERS)
        rows = [line.split() for line in answer.splitlines() if line[:1].isdigit()]
        return {row[3]: row for row in rows if len(row) > 20}

    def server(self, iid):
        (row,) = [row for name, row in self.servers().items() if name.startswith(f"{iid}-")]
        return row

    def reloads(self):
        answer = docker("exec", self.proxy, "python3", "-c", SHOW_PROC)
        return int([line.split() for line in answer.splitlines() if " master " in line][0][2])

    def config(self):
        return docker("exec", self.proxy, "cat", "/etc/haproxy/autoproxy/haproxy.cfg")

    def logs(self):
        return subprocess.run(["docker", "logs", self.proxy], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=False).stdout


@pytest.fixture(scope="module")
def edge(resources, consul_factory, agent_image, images):
    consul = consul_factory(resources.network("edge-net"), "edge-consul")
    return Edge(resources, consul, agent_image, images)


def local_share_within_bounds(edge, host, weights):
    """Send REQUESTS requests to ``host``; assert the local server's count is what the weights say.

    ``weights`` are the effective weights, the local server's first. HAProxy's roundrobin serves
    each server its weight's worth of every round of sum(weights) requests, so the count is off
    N * w / W by less than one round can make it: at most w (the local weight).
    """
    counts = Counter(edge.hostname(host) for _unused in range(REQUESTS))
    local, total = weights[0], sum(weights)
    expected = REQUESTS * local / total
    print(f"{host}: {dict(counts)}; local {counts[edge.names[0]]}, expected {expected:.1f} +- {local}")
    assert None not in counts, "every request was answered"
    assert abs(counts[edge.names[0]] - expected) <= local, counts
    return counts


def test_local_servers_take_the_share_their_weights_give(edge):
    for web in (0, 1, 2):
        edge.register("near", f"n{web}", web, ["weight=1"] if web else [])
    wait_for("all three servers", lambda: {edge.hostname("near.test") for _unused in range(12)} == set(edge.names),
             timeout=30)
    assert "local-first weights: servers at " + edge.ips[0] + " get their weight times 4" in edge.logs()
    reloads = edge.reloads()
    # Added through the Runtime API (add server ... weight 4) on a spare backend.
    assert edge.server("n0")[7] == str(LOCAL_WEIGHT) and edge.server("n1")[7] == "1"
    local_share_within_bounds(edge, "near.test", [LOCAL_WEIGHT, 1, 1])

    # A weight tag on the local server: 2 x 4 = 8, through 'set server ... weight'.
    edge.register("near", "n0", 0, ["weight=2"])
    wait_for("effective weight 8", lambda: edge.server("n0")[7] == "8", timeout=10)
    local_share_within_bounds(edge, "near.test", [8, 1, 1])
    assert edge.reloads() == reloads, "the weights went through the Runtime API"

    # A reload renders every backend from the table: the config carries the same weights.
    edge.register("shop", "s0", 1, ["sticky_session"])
    wait_for("a reload", lambda: edge.reloads() > reloads, timeout=15)
    wait_for("shop.test", lambda: edge.hostname("shop.test") == edge.names[1], timeout=10)
    config = edge.config()
    assert re.search(rf"server n0-\w+ {re.escape(edge.ips[0])}:80 check weight 8\n", config), config
    assert re.search(rf"server n1-\w+ {re.escape(edge.ips[1])}:80 check weight 1\n", config), config
    local_share_within_bounds(edge, "near.test", [8, 1, 1])

    # weight=0 stays 0, local or not.
    edge.register("near", "n0", 0, ["weight=0"])
    wait_for("the local server out", lambda: edge.server("n0")[7] == "0", timeout=10)
    assert {edge.hostname("near.test") for _unused in range(12)} == set(edge.names[1:])


def test_a_server_moved_off_a_dead_port_serves_at_once(edge):
    # A container restarted with a new published port under the same service id: HAProxy's
    # check of the old port took the server DOWN; the move must bring it back at once, not at
    # the next check (CHECK_INTERVAL later).
    edge.register("mover", "m0", 1, port=8081)  # nothing listens there
    wait_for("HAProxy's check to take m0 DOWN", lambda: edge.server("m0")[5] == "0", timeout=3 * CHECK_INTERVAL)
    reloads = edge.reloads()
    moved = time.monotonic()
    edge.register("mover", "m0", 1, port=80)
    wait_for("m0 at its new port", lambda: edge.server("m0")[18] == "80", timeout=CHECK_INTERVAL / 2)
    first = wait_for("the moved server to answer", lambda: edge.hostname("mover.test"), timeout=CHECK_INTERVAL / 2)
    took = time.monotonic() - moved
    print(f"moved server answered {took:.2f}s after its re-registration")
    assert first == edge.names[1]
    assert took < CHECK_INTERVAL / 2, "served before HAProxy's next check could have brought it back"
    assert edge.reloads() == reloads, "a move goes through the Runtime API"
    time.sleep(CHECK_INTERVAL + 1)
    assert edge.server("m0")[5] == "2", "HAProxy's checks of the new port pass"
    assert edge.hostname("mover.test") == edge.names[1]
