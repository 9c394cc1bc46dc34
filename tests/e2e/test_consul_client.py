# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""ConsulClient's connections against a real Consul agent: kept alive, one per thread, renewed
after Consul restarted, and the same error messages as before keep-alive."""

from __future__ import annotations

import os
import threading

import pytest
from support import free_port

from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, ConsulError

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

_ESTABLISHED = "01"


@pytest.fixture(scope="module")
def consul(resources, consul_factory):
    return consul_factory(resources.network("client"), "client-consul")


def connections_to(port):
    """Local ports of this process's established TCP connections to ``port``, from /proc."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    found = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                if inode in inodes and state == _ESTABLISHED and int(remote.rsplit(":", 1)[1], 16) == port:
                    found.append(int(local.rsplit(":", 1)[1], 16))
    return sorted(found)


def test_requests_of_one_thread_share_one_connection(consul):
    client = ConsulClient(consul.url)
    seen = []
    for number in range(10):
        client.request("GET", "/v1/status/leader")
        client.register_service({"ID": f"keep-{number}", "Name": "keep", "Port": 80})
        seen.append(connections_to(consul.port))
    assert len(seen[0]) == 1, f"one connection after the first request: {seen[0]}"
    assert seen == [seen[0]] * len(seen), "every request went over the first request's connection"
    client.close()
    assert connections_to(consul.port) == []


def test_each_thread_has_its_own_connection(consul):
    client = ConsulClient(consul.url)
    client.request("GET", "/v1/status/leader")
    mine = connections_to(consul.port)
    # A blocking query holds a connection for its whole wait: the other thread must not wait for it.
    index = client.catalog_services_index()[1]
    other_done = threading.Event()

    def other():
        client.request("GET", "/v1/status/leader")
        other_done.set()
        client.catalog_services_index(index=index, wait=3)

    thread = threading.Thread(target=other)
    thread.start()
    assert other_done.wait(10)
    both = connections_to(consul.port)
    assert len(both) == 2 and set(mine) < set(both), f"this thread's {mine}, both threads' {both}"
    client.request("GET", "/v1/status/leader")
    assert connections_to(consul.port) == both, "this thread kept its connection while the other one waited"
    thread.join(timeout=15)
    client.close()


def test_a_consul_restart_between_requests_costs_no_error(consul):
    client = ConsulClient(consul.url)
    client.register_service({"ID": "before-restart", "Name": "restart", "Port": 80})
    before = connections_to(consul.port)
    assert len(before) == 1
    consul.restart()  # closes the connection from Consul's side while the client holds it
    # The first request after the restart finds its connection closed and is sent again on a new one.
    client.register_service({"ID": "after-restart", "Name": "restart", "Port": 81})
    assert "after-restart" in consul.agent_services()
    after = connections_to(consul.port)
    assert len(after) == 1 and after != before, f"a new connection: before {before}, after {after}"
    assert client.request("GET", "/v1/status/leader")[0]
    client.close()


def test_a_blocking_query_cut_by_a_restart_is_an_error_or_an_answer_never_a_hang(consul):
    client = ConsulClient(consul.url)
    index = client.catalog_services_index()[1]
    outcome = []

    def watch():
        try:
            outcome.append(client.catalog_services_index(index=index, wait=30))
        except ConsulError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=watch)
    thread.start()
    consul.restart()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the query waited out its whole wait after Consul went away"
    assert outcome, "the query neither answered nor failed"
    client.close()


def test_errors_name_the_request_and_the_reason(consul):
    client = ConsulClient(consul.url)
    with pytest.raises(ConsulError, match=r"^Consul PUT /v1/agent/service/register failed: HTTP 400 ") as info:
        client.register_service({"Name": "bad", "Port": "not a number"})
    assert info.value.status == 400
    assert client.agent_service("no-such-service") is None, "a 404 is None for agent_service"
    port = free_port()  # nothing listens there
    closed = ConsulClient(f"http://127.0.0.1:{port}")
    with pytest.raises(ConsulError, match=rf"^Consul GET /v1/status/leader failed: cannot reach "
                                          rf"http://127.0.0.1:{port}: .*Connection refused"):
        closed.leader()
    with pytest.raises(ConsulError, match=r"^Consul GET /v1/status/leader failed: cannot reach consul:8500: "
                                          r"unknown url type"):
        ConsulClient("consul:8500").leader()


def test_services_coming_and_going_leave_the_nodes_index_where_it_is(consul):
    # The proxy agent's nodes watch (read_instances(nodes=...)) relies on this: it wakes only
    # when a node changes, not on every registration.
    client = ConsulClient(consul.url)
    _nodes, nodes_index = client.catalog_nodes()
    # A new agent updates its own node a few times as it syncs after its start: wait until a
    # blocking query on the nodes sees 2 s without a change.
    for _attempt in range(15):
        _nodes, settled = client.catalog_nodes(index=nodes_index, wait=2)
        if settled == nodes_index:
            break
        nodes_index = settled
    services_index = client.catalog_services_index()[1]
    client.register_service({"ID": "nodes-index-1", "Name": "nodes-index", "Port": 80,
                             "Check": {"TTL": "60s", "Status": "passing"}})
    client.deregister_service("nodes-index-1")
    assert client.catalog_services_index()[1] > services_index
    assert client.catalog_services_index()[1] == client.request("GET", "/v1/catalog/services")[1], \
        "the undecoded read answers the index a decoded one does"
    # What the watch would see: its blocking query waits out its time, no new index.
    assert client.catalog_nodes(index=nodes_index, wait=1)[1] == nodes_index
