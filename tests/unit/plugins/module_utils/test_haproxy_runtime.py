# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Runtime API plan (pure) and its execution against a real HAProxy with real HTTP servers."""

from __future__ import annotations

import contextlib
import copy
import http.server
import socket
import socketserver
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import (
    CliSession,
    HaproxyError,
    write_files,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_runtime import (
    AddServer,
    MapAdd,
    RunningState,
    RuntimeApi,
    RuntimeApiError,
    SetOption,
    plan_changes,
    send_command,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table

SETTINGS = HaproxySettings(spare_backends=2)


def instance(service, iid, port, tags=(), address="127.0.0.1", passing=True):
    return {"service": service, "id": iid, "node": "n1", "address": address, "port": port, "tags": list(tags),
            "passing": passing}


def table_of(*instances):
    return build_routing_table(list(instances), ["test"])


def kinds(plan):
    return [step.kind for step in plan.steps]


# ---- the plan (pure)

def test_identical_tables_need_nothing():
    table = table_of(instance("www", "a", 1, ["hello"]))
    plan = plan_changes(RunningState.from_table(table, SETTINGS), table)
    assert plan.reload_reason is None and plan.steps == []


def test_membership_and_weight_changes_are_runtime_steps():
    old = table_of(instance("www", "a", 1, ["hello"]), instance("www", "b", 2, ["hello"]))
    new = table_of(instance("www", "a", 1, ["hello", "weight=5"]), instance("www", "c", 3, ["hello"]),
                   instance("www", "b", 2, ["hello"], passing=False))
    plan = plan_changes(RunningState.from_table(old, SETTINGS), new)
    assert plan.reload_reason is None
    assert sorted(kinds(plan)[:2]) == ["add_server", "set_weight"] and kinds(plan)[2:] == ["remove_server"]
    steps = dict((step.kind, step) for step in plan.steps)
    assert steps["add_server"].proxy == "hello_www_backend" and steps["add_server"].server["port"] == 3
    assert steps["set_weight"].value == 5


def test_a_new_default_service_takes_a_spare_backend_and_map_entries():
    old = table_of(instance("www", "a", 1, ["hello"]))
    new = table_of(instance("www", "a", 1, ["hello"]), instance("api", "x", 9))
    state = RunningState.from_table(old, SETTINGS)
    plan = plan_changes(state, new)
    assert plan.reload_reason is None
    assert plan.steps[0] == AddServer("autoproxy_spare_0000", new["backends"]["api_backend"]["servers"][0], {})
    assert [s for s in plan.steps if s.kind == "map_add"] == [
        MapAdd("api", "autoproxy_spare_0000"), MapAdd("api.test", "autoproxy_spare_0000")]
    assert plan.state.spares == ["autoproxy_spare_0001"] and state.spares == [
        "autoproxy_spare_0000", "autoproxy_spare_0001"], "the plan never changes its input"
    # The next plan starts from the new state: the service keeps its spare.
    again = plan_changes(plan.state, table_of(instance("www", "a", 1, ["hello"]), instance("api", "x", 9),
                                              instance("api", "y", 10)))
    assert kinds(again) == ["add_server"] and again.steps[0].proxy == "autoproxy_spare_0000"


def test_a_plan_leaves_the_state_it_started_from_as_it_was():
    old = table_of(instance("www", "a", 1, ["hello"]), instance("www", "b", 2, ["hello"]), instance("api", "x", 9))
    state = RunningState.from_table(old, SETTINGS)
    before = copy.deepcopy(state)
    new = table_of(instance("www", "a", 1, ["hello"]), instance("www", "c", 3, ["hello", "weight=5"]),
                   instance("new", "n", 4))
    plan = plan_changes(state, new)
    assert plan.reload_reason is None and plan.steps
    assert state == before, "the running state changes only when the caller takes plan.state"
    assert plan_changes(plan.state, new).steps == [], "the new state is what the new table runs"


def test_a_removed_service_loses_its_hosts_before_its_servers():
    old = table_of(instance("www", "a", 1, ["hello"]), instance("api", "x", 9))
    plan = plan_changes(RunningState.from_table(old, SETTINGS), table_of(instance("www", "a", 1, ["hello"])))
    assert kinds(plan) == ["map_del", "map_del", "remove_server"]


@pytest.mark.parametrize("change, reason", [
    (lambda: [instance("www", "a", 1, ["hello", "balance=leastconn"])], "balance or sticky_session"),
    (lambda: [instance("www", "a", 1, ["hello"]), instance("s", "x", 2, ["sticky_session"])], "balance/sticky"),
    (lambda: [instance("www", "a", 1, ["hello"]), instance("www", "b", 2, ["hello"], address="web.invalid")],
     "host name address"),
    (lambda: [instance("www", "a", 1, ["hello"])] + [instance(f"s{i}", "x", 2) for i in range(3)], "no spare"),
])
def test_what_only_a_reload_can_do(change, reason):
    old = table_of(instance("www", "a", 1, ["hello"]))
    state = RunningState.from_table(old, SETTINGS)
    plan = plan_changes(state, table_of(*change()))
    assert plan.reload_reason and reason in plan.reload_reason
    assert plan.state is state and plan.steps == []


def test_maxconn_change_is_a_runtime_step():
    old = table_of(instance("www", "a", 1, ["hello"]))
    new = table_of(instance("www", "a", 1, ["hello", "maxconn=7"]))
    plan = plan_changes(RunningState.from_table(old, SETTINGS), new)
    name = old["backends"]["hello_www_backend"]["servers"][0]["name"]
    assert plan.steps == [SetOption("hello_www_backend", name, "maxconn", 7)]


# ---- against a real HAProxy

class _Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        time.sleep(float(self.headers.get("X-Delay", "0")))
        body = f"port {self.server.server_address[1]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def web_ports():
    servers = [_Server(("127.0.0.1", 0), _Hello) for _unused in range(3)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [server.server_address[1] for server in servers]
    for server in servers:
        server.shutdown()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Running:
    def __init__(self, tmp_path, haproxy_bin, table, **settings):
        settings = {"check_interval": "500ms", **settings}
        self.settings = HaproxySettings(http_port=free_port(), stats_port=free_port(), spare_backends=2,
                                        runtime_socket=str(tmp_path / "admin.sock"), **settings)
        self.dir = tmp_path / "live"
        write_files(str(self.dir), render_haproxy_config(table, self.settings))
        self.proc = subprocess.Popen([haproxy_bin, "-W", "-S", str(tmp_path / "master.sock"), "-f",
                                      str(self.dir / "haproxy.cfg")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.api = RuntimeApi(self.settings.runtime_socket, self.settings, drain_timeout=5.0)
        self.state = RunningState.from_table(table, self.settings)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                send_command(self.settings.runtime_socket, "show info")
                return
            except RuntimeApiError:
                time.sleep(0.05)
        raise AssertionError("HAProxy did not start")

    def change(self, table):
        plan = plan_changes(self.state, table)
        assert plan.reload_reason is None, plan.reload_reason
        self.api.apply(plan.steps)
        self.state = plan.state
        return plan

    def get(self, host, delay=None):
        headers = {"Host": host}
        if delay:
            headers["X-Delay"] = str(delay)
        req = urllib.request.Request(f"http://127.0.0.1:{self.settings.http_port}/", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    def ports_seen(self, host, count=12):
        return {body for status, body in (self.get(host) for _unused in range(count)) if status == 200}

    def servers(self, proxy):
        lines = send_command(self.settings.runtime_socket, f"show servers state {proxy}").splitlines()[2:]
        return {line.split()[3]: line.split() for line in lines if line.strip()}

    def drained(self, timeout=5.0):
        """Retry the removals as the agent's tick does. HAProxy refuses to delete a server that
        still has connections, and under load a server idle a moment ago may still have one
        when the delete comes right after its maintenance (seen here, 1 run in 15 at load 2+)."""
        deadline = time.monotonic() + timeout
        while self.api.retry_removals() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def running(tmp_path, haproxy_bin, web_ports):
    started = []

    def start(table, **settings):
        started.append(Running(tmp_path, haproxy_bin, table, **settings))
        return started[-1]

    yield start
    for proxy in started:
        proxy.stop()


def test_servers_join_and_leave_without_a_reload(running, web_ports):
    a, b, c = web_ports
    proxy = running(table_of(instance("www", "a", a, ["hello"])))
    pid = send_command(proxy.settings.runtime_socket, "show info")
    assert proxy.ports_seen("www.hello.test") == {f"port {a}"}
    proxy.change(table_of(instance("www", "a", a, ["hello"]), instance("www", "b", b, ["hello", "weight=3"])))
    assert proxy.ports_seen("www.hello.test") == {f"port {a}", f"port {b}"}
    added = proxy.servers("hello_www_backend")
    (name_b,) = [n for n, row in added.items() if row[4] == "127.0.0.1" and row[18] == str(b)]
    assert added[name_b][7] == "3", "the weight went with add server"
    proxy.change(table_of(instance("www", "b", b, ["hello", "weight=3"])))
    assert proxy.ports_seen("www.hello.test") == {f"port {b}"}
    proxy.drained()
    assert len(proxy.servers("hello_www_backend")) == 1, "the idle server was deleted, not only disabled"
    assert send_command(proxy.settings.runtime_socket, "show info").split("Pid:")[1].split()[0] == pid.split(
        "Pid:")[1].split()[0], "same worker: no reload happened"


def test_a_new_service_is_routed_through_a_spare_backend(running, web_ports):
    a, b, _unused = web_ports
    proxy = running(table_of(instance("www", "a", a, ["hello"])))
    assert proxy.get("api.test")[0] == 503
    proxy.change(table_of(instance("www", "a", a, ["hello"]), instance("api", "x", b)))
    assert proxy.ports_seen("api.test") == {f"port {b}"}
    assert proxy.ports_seen("api") == {f"port {b}"}, "the bare host too (internal load balancing)"
    proxy.change(table_of(instance("www", "a", a, ["hello"])))
    assert proxy.get("api.test")[0] == 503


def test_a_busy_server_is_deleted_once_its_request_is_done(running, web_ports):
    a, b, _unused = web_ports
    both = table_of(instance("www", "a", a, ["hello", "balance=first"]), instance("www", "b", b, ["hello"]))
    proxy = running(both)
    # balance first: every request goes to the first server (a), which we then remove mid-request.
    result = {}
    slow = threading.Thread(target=lambda: result.update(answer=proxy.get("www.hello.test", delay=1.5)))
    slow.start()
    time.sleep(0.3)
    proxy.change(table_of(instance("www", "b", b, ["hello", "balance=first"])))
    assert proxy.api.draining, "the server with a request in flight is not deleted yet"
    assert proxy.ports_seen("www.hello.test", 5) == {f"port {b}"}, "new requests avoid the draining server"
    slow.join()
    assert result["answer"] == (200, f"port {a}"), "the request in flight completed"
    proxy.drained()
    assert not proxy.api.draining
    assert len(proxy.servers("hello_www_backend")) == 1


def test_a_server_busy_past_the_drain_timeout_has_its_sessions_shut_down_once(running, web_ports):
    a, b, _unused = web_ports
    both = table_of(instance("www", "a", a, ["hello", "balance=first"]), instance("www", "b", b, ["hello"]))
    proxy = running(both)
    proxy.api.drain_timeout = 0.5
    sent = []
    command = proxy.api.command
    proxy.api.command = lambda *words: sent.append(" ".join(map(str, words[:2]))) or command(*words)
    result = {}
    slow = threading.Thread(target=lambda: result.update(answer=proxy.get("www.hello.test", delay=4)))
    slow.start()
    time.sleep(0.3)
    proxy.change(table_of(instance("www", "b", b, ["hello", "balance=first"])))
    ((key, drain),) = proxy.api.draining.items()
    while proxy.api.retry_removals() and time.monotonic() < drain.deadline + 3:
        time.sleep(0.02)
    slow.join()
    assert not proxy.api.draining, "deleted once its sessions were shut down"
    assert drain.shut_down
    assert sent.count("shutdown sessions") == 1
    # Polled every 20 ms for over 0.5 s, it was asked at 0.1 s doubling: a handful of times.
    assert 2 <= sent.count("del server") <= 6, sent
    assert result["answer"] != (200, f"port {a}"), "the request on the drained server was cut, not waited for"
    assert len(proxy.servers("hello_www_backend")) == 1
    assert key[0] == "hello_www_backend"


def test_a_server_that_comes_back_while_draining_is_reused(running, web_ports):
    a, b, _unused = web_ports
    both = table_of(instance("www", "a", a, ["hello", "balance=first"]), instance("www", "b", b, ["hello"]))
    proxy = running(both)
    slow = threading.Thread(target=proxy.get, args=("www.hello.test", 1.0))
    slow.start()
    time.sleep(0.3)
    proxy.change(table_of(instance("www", "b", b, ["hello", "balance=first"])))
    assert proxy.api.draining
    proxy.change(both)
    assert not proxy.api.draining
    assert proxy.ports_seen("www.hello.test", 3) == {f"port {a}"}, "back in rotation, first again"
    slow.join()


def test_haproxy_refusals_surface_as_errors(running, web_ports):
    proxy = running(table_of(instance("www", "a", web_ports[0], ["hello"])))
    with pytest.raises(RuntimeApiError, match="No such server|Unknown"):
        proxy.api.apply([SetOption("hello_www_backend", "nope", "weight", 3)])
    with pytest.raises(RuntimeApiError, match="unsafe"):
        proxy.api.apply([MapAdd("evil;shutdown", "x")])


def test_a_server_moved_off_a_dead_address_serves_at_once(running, web_ports):
    # The registrator's case: a container restarts with a new published port under the same
    # service id. HAProxy's checks of the old address marked the server DOWN; Consul says the
    # new address passes. Before the fix the server stayed DOWN (503) until its next check, up
    # to a whole check interval after the move.
    a = web_ports[0]
    dead = free_port()
    proxy = running(table_of(instance("www", "a", dead, ["hello"])), check_interval="3s", check_fall=1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _op_state(proxy, "hello_www_backend") != "0":
        time.sleep(0.02)
    assert _op_state(proxy, "hello_www_backend") == "0", "HAProxy's check of the dead address took the server DOWN"
    plan = proxy.change(table_of(instance("www", "a", a, ["hello"])))
    assert [step.kind for step in plan.steps] == ["set_addr"]
    # The next check is close to 3 s away: only the move itself can bring the server back now.
    assert proxy.get("www.hello.test") == (200, f"port {a}")
    assert _op_state(proxy, "hello_www_backend") == "2"
    time.sleep(3.5)
    assert _op_state(proxy, "hello_www_backend") == "2", "the checks after the move go to the new address"
    assert proxy.get("www.hello.test") == (200, f"port {a}")


def _op_state(proxy, backend):
    """srv_op_state of the backend's only server: 0 DOWN, 2 UP (show servers state)."""
    (row,) = proxy.servers(backend).values()
    return row[5]


def _cumulated_connections(proxy):
    info = send_command(proxy.settings.runtime_socket, "show info")
    return int(info.split("CumConns:")[1].split()[0])


def test_one_update_is_one_connection_to_the_runtime_api(running, web_ports):
    a, b, c = web_ports
    proxy = running(table_of(instance("www", "a", a, ["hello"])))
    before = _cumulated_connections(proxy)
    plan = proxy.change(table_of(instance("www", "a", a, ["hello", "weight=5"]), instance("www", "b", b, ["hello"]),
                                 instance("api", "c", c)))
    assert len(plan.steps) >= 4, [step.kind for step in plan.steps]
    # show info's own connection is the second one counted.
    assert _cumulated_connections(proxy) - before == 2
    assert proxy.ports_seen("api.test") == {f"port {c}"}
    assert proxy.ports_seen("www.hello.test") == {f"port {a}", f"port {b}"}


def test_a_cli_session_gives_each_command_its_own_answer_and_fails_when_haproxy_closes_it(running, web_ports):
    proxy = running(table_of(instance("www", "a", web_ports[0], ["hello"])))
    with CliSession(proxy.settings.runtime_socket) as session:
        assert session.command("set server hello_www_backend/nope weight 3") == "No such server."
        assert "Pid:" in session.command("show info")
        assert session.command("set map nope.map a b").startswith("Unknown map identifier")
        with pytest.raises(HaproxyError, match="'quit'"):
            session.command("quit")


def test_a_runtime_api_that_cannot_connect_raises_its_own_error(running, web_ports, tmp_path):
    # The agent falls back to a reload (update) or logs and goes on (tick) on RuntimeApiError;
    # anything else would end it, and HAProxy with it.
    api = RuntimeApi(str(tmp_path / "gone.sock"), HaproxySettings(spare_backends=1))
    with pytest.raises(RuntimeApiError, match="gone.sock"):
        api.apply([MapAdd("a.test", "b")])
    a, b, _unused = web_ports
    proxy = running(table_of(instance("www", "a", a, ["hello", "balance=first"]), instance("www", "b", b, ["hello"])))

    def in_flight():  # a request in flight keeps the removed server draining; HAProxy's stop cuts it
        with contextlib.suppress(OSError):
            proxy.get("www.hello.test", 1.0)

    slow = threading.Thread(target=in_flight)
    slow.start()
    time.sleep(0.3)
    proxy.change(table_of(instance("www", "b", b, ["hello", "balance=first"])))
    assert proxy.api.draining
    proxy.stop()
    slow.join()
    time.sleep(0.2)
    with pytest.raises(RuntimeApiError, match="admin.sock"):
        proxy.api.retry_removals()
