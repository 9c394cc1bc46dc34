# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Local-first weights over the lab (docs/RULES.md §18): with one replica on each of the 4 hosts,
each edge gives the replica on its own host the fleet's default weight L (10) and the others 1,
so that replica answers L/(L+3) of the requests through that edge; site.yml with
proxy_local_weight=0 makes the share even. Runs after test_site.py on its stack (fleet_stack) and
leaves it as it found it: 2 replicas and the edges' proxies as site.yml made them."""

from __future__ import annotations

import json
import shlex

import pytest
from fleet_support import HELLO, answered_by, failures, wait_until
from test_site import published_servers, replicas_by_host

pytestmark = pytest.mark.fleet

FLEET_LOCAL_WEIGHT = 10  # roles/proxy/defaults/main.yml: proxy_local_weight in a fleet
REPLICAS = 4  # spread: one on each lab host, so each edge has n_l = 1 local and n_r = 3 other replicas
ROUNDS = 10
# HAProxy's runtime API in the proxy container (its image has python3, not socat).
SHOW_SERVERS = ("import socket;s=socket.socket(socket.AF_UNIX);s.connect('/run/haproxy/admin.sock');"
                "s.sendall(b'show servers state\\n');s.shutdown(1);print(s.makefile().read())")
SHOW_PROC = SHOW_SERVERS.replace("admin.sock", "master.sock").replace("show servers state", "show proc")
SRV_OP_RUNNING = "2"
WINDOWS = 3


def proxy_args(stack, edge: str) -> list[str]:
    return json.loads(stack.fleet.ssh(edge, "docker inspect -f '{{json .Args}}' autoproxy_proxy"))


def local_weight(stack, edge: str) -> int:
    (value,) = [arg.split("=", 1)[1] for arg in proxy_args(stack, edge) if arg.startswith("--local-weight=")]
    return int(value)


def haproxy_weights(stack, edge: str, servers: list[str]) -> dict[str, tuple[int, str]]:
    """{address:port: (weight, operational state)} of HAProxy's servers at those addresses (`show servers state`).

    Columns of `show servers state` (format 1): 4 srv_addr, 5 srv_op_state, 7 srv_uweight, 18 srv_port.
    """
    answer = stack.fleet.docker_exec(edge, "autoproxy_proxy", f"python3 -c {shlex.quote(SHOW_SERVERS)}")
    rows = [line.split() for line in answer.splitlines() if line[:1].isdigit()]
    found = {f"{row[4]}:{row[18]}": (int(row[7]), row[5]) for row in rows if len(row) > 18}
    return {server: found[server] for server in servers if server in found}


def reloads(stack, edge: str) -> int:
    """How many times the edge's HAProxy was reloaded (its master's `show proc`)."""
    answer = stack.fleet.docker_exec(edge, "autoproxy_proxy", f"python3 -c {shlex.quote(SHOW_PROC)}")
    return int([line.split() for line in answer.splitlines() if " master " in line][0][2])


def expected_weights(stack, edge: str, servers: list[str], weight: int) -> dict[str, tuple[int, str]]:
    local = stack.fleet.hosts[edge]
    return {server: (max(weight, 1) if server.split(":")[0] == local else 1, SRV_OP_RUNNING) for server in servers}


def answers(stack, edge: str, requests: int) -> dict[str, int]:
    """How many of `requests` requests through an edge each replica (its hostname) answered; other statuses as ''."""
    counts: dict[str, int] = {}
    for _request in range(requests):
        name = answered_by(*stack.get(edge, HELLO)) or ""
        counts[name] = counts.get(name, 0) + 1
    return counts


def assert_local_share(stack, edge: str, replicas: dict[str, dict[str, str]], weight: int) -> None:
    """Through `edge`, the replica on its host answers L·n_l/(L·n_l+n_r) of ROUNDS whole rounds, ±1 request.

    HAProxy carries the weights first (so a wrong share fails here for the right reason). Then
    roundrobin is deterministic: one round is L·n_l + n_r picks with each server picked its weight
    times, so over whole rounds, with no other traffic on this edge, the counts are exact (seen
    from a config HAProxy loaded: 100, 10, 10, 10). HAProxy's weighted roundrobin advances each
    server by integer steps, and servers the agent added at runtime (scale.yml) enter at the
    current position, so a window may hold one pick more or less of a server (seen: 101/9 and
    99/11 after a scale). Hence ±1 per server: L = 9 or 11 would give 97.5 or 102.1 of 130. A
    reload starts a new schedule in the new worker, so a window that spans one is measured again,
    at most WINDOWS times.
    """
    servers = published_servers(stack, replicas)
    wanted = expected_weights(stack, edge, servers, weight)

    def carried():
        seen = haproxy_weights(stack, edge, servers)
        return True if seen == wanted else seen

    wait_until(f"edge {edge}'s HAProxy to carry the weights {wanted}", carried, timeout=60)
    (local,) = replicas[edge].values()
    others = {short_id for host, per_host in replicas.items() if host != edge for short_id in per_host.values()}
    n_l, n_r, lw = 1, len(others), max(weight, 1)
    round_size = lw * n_l + n_r
    for _window in range(WINDOWS):
        reloads_before = reloads(stack, edge)
        counts = answers(stack, edge, ROUNDS * round_size)
        if reloads(stack, edge) == reloads_before:
            break
        print(f"edge {edge}: HAProxy reloaded during the window, measuring again ({counts})")
    else:
        pytest.fail(f"edge {edge}'s HAProxy reloaded during each of {WINDOWS} windows of {ROUNDS} rounds")
    share = counts.get(local, 0) / (ROUNDS * round_size)
    print(f"edge {edge}, proxy_local_weight {weight}: local replica {local} answered {counts.get(local, 0)} of "
          f"{ROUNDS * round_size} ({share:.3f}; expected {lw * n_l}/{round_size}); all: {counts}")
    wanted_counts = {local: ROUNDS * lw * n_l, **dict.fromkeys(others, ROUNDS)}
    assert set(counts) == set(wanted_counts), counts
    assert all(abs(counts[name] - wanted) <= 1 for name, wanted in wanted_counts.items()), (counts, wanted_counts)


def test_each_edge_prefers_the_replica_on_its_own_host_and_weight_0_makes_it_even(fleet_stack):
    stack = fleet_stack
    before = {edge: proxy_args(stack, edge) for edge in stack.edges}
    found_replicas = sum(len(per_host) for per_host in replicas_by_host(stack).values())
    result = stack.fleet.playbook_json("autoproxy.stack.scale", "-e", f"web_replicas={REPLICAS}")
    assert not failures(result), json.dumps(result["stats"])
    try:
        replicas = replicas_by_host(stack)
        assert {host: len(per_host) for host, per_host in replicas.items()} == dict.fromkeys(stack.fleet.hosts, 1)
        for edge in stack.edges:
            # The lab's inventory has a consul_servers group: the fleet default applies, nothing sets it.
            assert local_weight(stack, edge) == FLEET_LOCAL_WEIGHT
            assert f"--local-address={stack.fleet.hosts[edge]}" in before[edge], before[edge]
            assert_local_share(stack, edge, replicas, FLEET_LOCAL_WEIGHT)

        result = stack.fleet.playbook_json("autoproxy.stack.site", "-e", "proxy_local_weight=0",
                                           "-e", f"web_replicas={REPLICAS}")
        assert not failures(result), json.dumps(result["stats"])
        assert replicas_by_host(stack) == replicas
        for edge in stack.edges:
            assert local_weight(stack, edge) == 0
            assert_local_share(stack, edge, replicas, 0)
    finally:
        # One site.yml run puts back both the edges' proxies and the replicas test_site.py left.
        result = stack.fleet.playbook_json("autoproxy.stack.site", "-e", f"web_replicas={found_replicas}")
    assert not failures(result), json.dumps(result["stats"])
    assert {edge: proxy_args(stack, edge) for edge in stack.edges} == before
    assert sum(len(per_host) for per_host in replicas_by_host(stack).values()) == found_replicas
