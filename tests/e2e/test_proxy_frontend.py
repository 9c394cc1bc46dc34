# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every request meets in the proxy agent's HAProxy (3.0, in the agent image): Host forms,
forwarding headers, an idle WebSocket past ``timeout client``, the read-only Consul UI and the
access log. The backend is tests/e2e/echo_server.py in a container; services are registered
straight into a real Consul."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time

import pytest
import support
from echo_server import accept_key, frame, read_frame
from support import docker, free_port, wait_for

pytestmark = pytest.mark.e2e

ECHO_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo_server.py")
TIMEOUT_CLIENT = 2  # seconds, set short so the WebSocket test idles well past it


class Proxy:
    def __init__(self, resources, image, consul, stem, *args):
        self.port = free_port()
        self.container = resources.run(
            stem, image, "proxy", f"--consul={consul.internal_url}", "--domains=test", "--spare-backends=3",
            "--check-interval=500ms", "--rename-after=0", f"--timeout-client={TIMEOUT_CLIENT}s",
            "--access-log-format=json", *args,
            network=consul.network, labels={"SERVICE_IGNORE": "true"}, options=("-p", f"127.0.0.1:{self.port}:80"))

    def request(self, host, method="GET", path="/", headers=None, body=b""):
        """(status, body bytes); Host goes out exactly as given."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def echoed(self, host, headers=None):
        status, body = self.request(host, headers=headers)
        return json.loads(body) if status == 200 else None

    def websocket(self, host):
        """A connected WebSocket (a plain socket after the 101 answer)."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        sock.sendall((f"GET /chat HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise AssertionError(f"no upgrade answer, got {head!r}")
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        assert accept_key(key).encode() in head
        return sock


def exchange(sock, text):
    """Send a text message and read the echo; None if the connection is gone."""
    try:
        sock.sendall(frame(0x1, text.encode(), mask=b"\x01\x02\x03\x04"))
        got = read_frame(sock)
    except OSError:
        return None
    return got[1].decode() if got and got[0] == 0x1 else None


@pytest.fixture(scope="module")
def stack(resources, consul_factory, agent_image):
    network = resources.network("fe-net")
    consul = consul_factory(network, "fe-consul")
    echo = resources.run("fe-echo", agent_image, "/echo.py", network=network, labels={"SERVICE_IGNORE": "true"},
                         options=("--entrypoint", "python3", "-v", f"{ECHO_SCRIPT}:/echo.py:ro"))
    echo_ip = support.container_ip(echo, network)
    consul_ip = support.container_ip(consul.container, network)
    for sid, name, address, port, tags in (
        ("www-1", "www", echo_ip, 80, ["hello", "server_alias=shop.example"]),
        ("api-1", "api_shop", echo_ip, 80, []),
        ("ws-1", "ws_echo", echo_ip, 80, []),
        ("consul-ui", "consul-admin_infra", consul_ip, 8500, []),
    ):
        consul.put("/v1/agent/service/register", {
            "ID": sid, "Name": name, "Tags": tags, "Address": address, "Port": port,
            "Check": {"CheckID": f"ttl-{sid}", "TTL": "600s", "Status": "passing"}})
    proxy = Proxy(resources, agent_image, consul, "fe-proxy")
    for host in ("www.hello.test", "api.shop.test", "ws.echo.test", "consul-admin.infra.test"):
        wait_for(f"the proxy to route {host}", lambda host=host: proxy.request(host, path="/v1/status/leader")[0]
                 == 200, timeout=60)
    return consul, proxy, resources, agent_image


@pytest.mark.parametrize("host", [
    "www.hello.test", "www.hello.test.", "www.hello.test.:80", "WWW.HELLO.TEST.:80", "www.hello.", "www.hello",
    "Shop.Example.", "shop.example.test.:80", "API.SHOP.", "api.shop.test.:8080"])
def test_every_form_of_a_host_routes(stack, host):
    _consul, proxy, _res, _img = stack
    assert proxy.request(host)[0] == 200


@pytest.mark.parametrize("host", [
    "xwww.hello.test", "sub.www.hello.test", "www.hello.test.evil", "www.hello.test..", "www.hello.tes.",
    "xapi.shop", "shop.example.evil"])
def test_lookalikes_do_not_route(stack, host):
    _consul, proxy, _res, _img = stack
    assert proxy.request(host)[0] == 503


def _headers(echoed):
    found = {}
    for name, value in echoed["headers"]:
        found.setdefault(name, []).append(value)
    return found


def test_forwarding_headers_reach_the_app_and_replace_the_clients(stack):
    _consul, proxy, _res, _img = stack
    seen = _headers(proxy.echoed("www.hello.test:8080", {
        "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Port": "443", "X-Real-IP": "6.6.6.6", "Forwarded": "for=6.6.6.6"}))
    assert len(seen["x-forwarded-for"]) == 1 and "6.6.6.6" not in seen["x-forwarded-for"][0]
    assert seen["x-real-ip"] == seen["x-forwarded-for"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == ["www.hello.test:8080"]
    assert seen["x-forwarded-port"] == ["8080"]
    assert "forwarded" not in seen
    plain = _headers(proxy.echoed("api.shop.test"))
    assert plain["x-forwarded-port"] == ["80"] and plain["x-forwarded-host"] == ["api.shop.test"]


def test_an_idle_websocket_outlives_timeout_client(stack):
    consul, proxy, resources, image = stack
    # A second proxy with a short tunnel timeout shows the idle wait is long enough to be cut.
    short = Proxy(resources, image, consul, "fe-proxy-short", "--timeout-tunnel=1s")
    wait_for("the short-tunnel proxy", lambda: short.request("ws.echo.test")[0] == 200, timeout=60)
    kept, cut = proxy.websocket("ws.echo.test"), short.websocket("ws.echo.test")
    try:
        assert exchange(kept, "hello") == "hello" and exchange(cut, "hello") == "hello"
        time.sleep(TIMEOUT_CLIENT * 2.5)
        assert exchange(kept, "still there") == "still there"
        assert exchange(cut, "still there") is None, "timeout tunnel 1s must have closed the idle WebSocket"
    finally:
        kept.close()
        cut.close()
    assert f"timeout client {TIMEOUT_CLIENT}s" in docker("exec", proxy.container, "cat",
                                                         "/etc/haproxy/autoproxy/haproxy.cfg")


def _routes(consul):
    return sorted(consul.get("/v1/catalog/services"))


def test_consul_ui_refuses_writes_through_the_proxy(stack):
    consul, proxy, _res, _img = stack
    before = _routes(consul)
    hijack = json.dumps({"ID": "evil", "Name": "www", "Tags": ["hello"], "Address": "10.6.6.6", "Port": 80}).encode()
    for host in ("consul-admin.infra.test", "CONSUL-ADMIN.INFRA.TEST.:80", "consul-admin.infra."):
        for method in ("PUT", "POST"):
            status, _body = proxy.request(host, method, "/v1/agent/service/register", body=hijack)
            assert status == 403, (host, method, status)
        assert proxy.request(host, "PUT", "/v1/agent/service/deregister/www-1")[0] == 403
        assert proxy.request(host, "GET", "/v1/agent/service/deregister/www-1")[0] == 403
        assert proxy.request(host, "DELETE", "/v1/kv/x")[0] == 403
        assert proxy.request(host, "GET", "/v1/snapshot")[0] == 403
    assert _routes(consul) == before
    assert "evil" not in consul.agent_services()
    assert sorted(entry["Service"]["ID"] for entry in consul.health("www")) == ["www-1"]
    # Reading still works: the UI and the read endpoints it uses.
    status, body = proxy.request("consul-admin.infra.test", "GET", "/ui/")
    assert status == 200 and b"consul" in body.lower()
    status, body = proxy.request("consul-admin.infra.test", "GET", "/v1/catalog/services")
    assert status == 200 and "www" in json.loads(body)
    assert proxy.request("consul-admin.infra.test", "HEAD", "/ui/")[0] == 200
    assert proxy.request("www.hello.test")[0] == 200


def test_access_log_is_one_json_line_per_request(stack):
    _consul, proxy, _res, _img = stack
    marker = f"/marker-{time.monotonic_ns()}"
    proxy.request("WWW.Hello.test.", path=marker)

    def logged():
        lines = [line for line in support.container_logs(proxy.container).splitlines() if marker in line]
        return lines or None

    lines = wait_for("the access log line", logged, timeout=10)
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["host"] == "www.hello.test" and record["uri"] == marker and record["method"] == "GET"
    assert record["status"] == 200
    assert record["backend"] == "hello_www_backend" or record["backend"].startswith("autoproxy_spare_")
    assert record["server"] != "<NOSRV>" and record["bytes"] > 0 and record["time_total_ms"] >= 0


def test_a_consul_ui_route_added_later_is_guarded_at_once(stack):
    consul, proxy, _res, _img = stack
    consul_ip = support.container_ip(consul.container, consul.network)
    consul.put("/v1/agent/service/register", {
        "ID": "consul-ui-2", "Name": "consul-admin_infra", "Tags": ["ui2"], "Address": consul_ip, "Port": 8500,
        "Check": {"CheckID": "ttl-consul-ui-2", "TTL": "600s", "Status": "passing"}})
    host = "consul-admin.infra.ui2.test"
    wait_for(f"the proxy to route {host}", lambda: proxy.request(host, path="/v1/status/leader")[0] == 200,
             timeout=30)
    assert proxy.request(host, "PUT", "/v1/agent/service/register",
                         body=b'{"ID": "evil2", "Name": "evil", "Port": 80}')[0] == 403
    assert "evil2" not in consul.agent_services()
    # The new worker may answer before the agent has logged why it reloaded.
    wait_for("the reload's reason in the agent's log",
             lambda: "the Consul UI's hosts changed" in support.container_logs(proxy.container), timeout=10)
