# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The HTTP frontend's rules: the Python normaliser, and the rendered config run by a real HAProxy
in front of a local echo server (Host forms, forwarding headers, Consul UI guard, access log)."""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import json
import re
import socket
import subprocess
import threading
import time

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    fit_to_fd_limit,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_frontend import (
    check_networks,
    normalise_host,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table

# Every kind of route: a tag (www + hello), an alias, a bare name (api_shop -> api.shop), and
# each of them under a domain.
INSTANCES = [
    {"service": "www", "id": "www-1", "tags": ["hello", "server_alias=alias.example"]},
    {"service": "api_shop", "id": "api-1", "tags": []},
    {"service": "consul-admin_infra", "id": "consul-1", "tags": []},
]
ROUTED = ["www.hello", "www.hello.test", "alias.example", "alias.example.test", "api.shop", "api.shop.test"]
# (Host header, the host it routes by)
HOST_FORMS = [
    ("www.hello.test", "www.hello.test"),
    ("www.hello.test:80", "www.hello.test"),
    ("www.hello.test.", "www.hello.test"),
    ("www.hello.test.:80", "www.hello.test"),
    ("WWW.HELLO.TEST.:80", "www.hello.test"),
    ("WWW.Hello.test:8080", "www.hello.test"),
    ("www.hello.", "www.hello"),
    ("www.hello", "www.hello"),
    ("Alias.Example.", "alias.example"),
    ("alias.example.test.:80", "alias.example.test"),
    ("API.SHOP.", "api.shop"),
    ("api.shop.test.:80", "api.shop.test"),
]
LOOKALIKES = [
    "xwww.hello.test",
    "sub.www.hello.test",
    "www.hello.test.evil",
    "www.hello.test..",
    "www.hello.test..:80",
    ".www.hello.test",
    "www.hello.tes",
    "www-hello.test",
    "xapi.shop",
    "alias.example.evil.",
    "",
    ":80",
]


@pytest.mark.parametrize(("header", "host"), HOST_FORMS)
def test_normalise_host_strips_port_case_and_one_trailing_dot(header, host):
    assert normalise_host(header) == host


@pytest.mark.parametrize("header", LOOKALIKES)
def test_lookalikes_normalise_to_no_routed_host(header):
    table = build_routing_table(_instances(8080), ["test"])
    assert normalise_host(header) not in table["hosts"]


def test_check_networks():
    expected = ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]
    assert check_networks(["10.0.0.0/8", "192.168.1.7", "fd00::/8"], "x") == expected
    for bad in (["10.0.0.0/33"], ["any"], "10.0.0.0/8", [8]):
        with pytest.raises(ValueError, match="x"):
            check_networks(bad, "x")


def _instances(port):
    return [dict(instance, address="127.0.0.1", port=port, passing=True) for instance in INSTANCES]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers every request with the request's method, path and headers as JSON."""

    def _answer(self):
        body = json.dumps({"method": self.command, "path": self.path,
                           "headers": [[name.lower(), value] for name, value in self.headers.items()]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

    def log_message(self, *_args):
        pass


class Proxy:
    """A real HAProxy (no master, foreground) running the rendered config, its stdout collected."""

    def __init__(self, tmp_path, haproxy_bin, **settings):
        self.echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        threading.Thread(target=self.echo.serve_forever, daemon=True).start()
        self.port = _free_port()
        settings = HaproxySettings(http_port=self.port, stats_port=_free_port(),
                                   runtime_socket=str(tmp_path / "admin.sock"), **settings)
        files = render_haproxy_config(build_routing_table(_instances(self.echo.server_address[1]), ["test"]), settings)
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        self.lines = []
        self.process = subprocess.Popen([haproxy_bin, "-db", "-f", str(tmp_path / "haproxy.cfg")],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        pytest.fail("HAProxy did not start: " + "".join(self.lines))

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def request(self, host, method="GET", path="/", headers=None):
        """(status, echoed request or None); Host is sent exactly as given."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", "0")
            conn.endheaders()
            resp = conn.getresponse()
            body = resp.read()
            echoed = json.loads(body) if resp.status == 200 and body else None
            return resp.status, echoed
        finally:
            conn.close()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.echo.shutdown()
        self.echo.server_close()


@pytest.fixture
def proxy(tmp_path, haproxy_bin):
    running = Proxy(tmp_path, haproxy_bin)
    yield running
    running.stop()


def headers_of(echoed):
    return {name: [v for n, v in echoed["headers"] if n == name] for name, _unused in echoed["headers"]}


def test_haproxy_routes_every_host_form(proxy):
    for header, host in HOST_FORMS:
        status, echoed = proxy.request(header)
        assert status == 200, f"Host {header!r} ({host}) answered {status}"
        assert echoed is not None
    for host in ROUTED:
        assert proxy.request(host)[0] == 200, host


def test_haproxy_does_not_route_lookalikes(proxy):
    for header in LOOKALIKES:
        status, _unused = proxy.request(header)
        # An empty Host is refused by HAProxy itself (400); the others find no route (503).
        assert status in (400, 503) and (status == 503 or header in ("", ":80")), (header, status)


def test_forwarding_headers_replace_what_a_client_sends(proxy):
    status, echoed = proxy.request("WWW.Hello.test:8080", headers={
        "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Port": "443", "X-Real-IP": "6.6.6.6", "Forwarded": "for=6.6.6.6"})
    assert status == 200
    seen = headers_of(echoed)
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == ["WWW.Hello.test:8080"]
    assert seen["x-forwarded-port"] == ["8080"]
    assert seen["x-real-ip"] == ["127.0.0.1"]
    assert "forwarded" not in seen
    status, echoed = proxy.request("www.hello.test")
    seen = headers_of(echoed)
    assert seen["x-forwarded-port"] == ["80"] and seen["x-forwarded-host"] == ["www.hello.test"]


def test_forwarding_headers_from_a_trusted_proxy_are_kept(tmp_path, haproxy_bin):
    proxy = Proxy(tmp_path, haproxy_bin, trusted_networks=("127.0.0.0/8",))
    try:
        status, echoed = proxy.request("www.hello.test", headers={
            "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example",
            "X-Forwarded-Port": "443"})
    finally:
        proxy.stop()
    assert status == 200
    seen = headers_of(echoed)
    assert ", ".join(seen["x-forwarded-for"]) == "203.0.113.7, 127.0.0.1"
    assert seen["x-forwarded-proto"] == ["https"]
    assert seen["x-forwarded-host"] == ["shop.example"]
    assert seen["x-forwarded-port"] == ["443"]


CONSUL_UI_HOSTS = ["consul-admin.infra.test", "CONSUL-ADMIN.INFRA.TEST.:80", "consul-admin.infra."]


def test_consul_ui_is_read_only_by_default(proxy):
    for host in CONSUL_UI_HOSTS:
        assert proxy.request(host, "GET", "/ui/")[0] == 200
        assert proxy.request(host, "HEAD", "/v1/catalog/services")[0] == 200
        for method in ("PUT", "POST", "DELETE"):
            assert proxy.request(host, method, "/v1/agent/service/register")[0] == 403, (host, method)
            assert proxy.request(host, method, "/v1/kv/x")[0] == 403, (host, method)
        for path in ("/v1/agent/service/deregister/www-1", "//v1//agent/service/register", "/v1/%73napshot",
                     "/v1/catalog/register", "/v1/snapshot?dc=dc1"):
            assert proxy.request(host, "GET", path)[0] == 403, (host, path)
    # Other services are not guarded.
    assert proxy.request("www.hello.test", "PUT", "/v1/agent/service/register")[0] == 200


def test_consul_ui_full_access_needs_basic_auth(tmp_path, haproxy_bin):
    with pytest.raises(ValueError, match="consul_ui_user"):
        render_haproxy_config({"backends": {}, "hosts": {}}, HaproxySettings(consul_ui_access="full"))
    proxy = Proxy(tmp_path, haproxy_bin, consul_ui_access="full", consul_ui_user="admin", consul_ui_password="s3cr$t")
    good = {"Authorization": "Basic YWRtaW46czNjciR0"}  # admin:s3cr$t
    bad = {"Authorization": "Basic YWRtaW46d3Jvbmc="}  # admin:wrong
    try:
        assert proxy.request("consul-admin.infra.test", "GET", "/ui/")[0] == 401
        assert proxy.request("consul-admin.infra.test", "PUT", "/v1/agent/service/register", bad)[0] == 401
        assert proxy.request("consul-admin.infra.test", "PUT", "/v1/agent/service/register", good)[0] == 200
        assert proxy.request("www.hello.test", "GET", "/")[0] == 200
    finally:
        proxy.stop()


def _log_lines(proxy, count, keep):
    """The log lines for which ``keep`` is true, once there are ``count`` of them (or after 5 s)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len([line for line in proxy.lines if keep(line)]) < count:
        time.sleep(0.05)
    return [line for line in proxy.lines if keep(line)]


def test_access_log_text(tmp_path, haproxy_bin):
    proxy = Proxy(tmp_path, haproxy_bin, log_stdout=True)
    try:
        proxy.request("WWW.Hello.test.:80", "GET", "/path?q=1")
        lines = _log_lines(proxy, 1, lambda line: "hello_www_backend" in line)
    finally:
        proxy.stop()
    assert len(lines) == 1, proxy.lines
    assert " 200 " in lines[0] and '"www.hello.test" "GET /path?q=1 HTTP/1.1"' in lines[0]
    assert lines[0].startswith("127.0.0.1:")


def test_access_log_json(tmp_path, haproxy_bin):
    proxy = Proxy(tmp_path, haproxy_bin, log_stdout=True, log_format="json")
    try:
        proxy.request("www.hello.test", "GET", '/a"b\\c')
        proxy.request("nothing.test", "GET", "/")
        lines = _log_lines(proxy, 2, lambda line: line.startswith("{"))
    finally:
        proxy.stop()
    # A stream's line is written when the stream ends, by the thread that ran it: two requests'
    # lines may come in either order (seen in CI).
    records = sorted((json.loads(line) for line in lines), key=lambda r: r["status"])
    assert [(r["host"], r["backend"], r["status"]) for r in records] == [
        ("www.hello.test", "hello_www_backend", 200), ("nothing.test", "autoproxy_no_route", 503)]
    assert records[0]["uri"] == '/a"b\\c' and records[0]["client"] == "127.0.0.1"
    assert set(records[0]) == {"time", "client", "client_port", "frontend", "backend", "server", "host", "method",
                               "uri", "status", "bytes", "time_request_ms", "time_queue_ms", "time_connect_ms",
                               "time_response_ms", "time_total_ms", "termination", "retries"}
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z", records[0]["time"])


@pytest.mark.parametrize("changes", [
    {"log_format": "xml"},
    {"maxconn": 0},
    {"http_maxconn": 5000},
    {"trusted_networks": ["10.0.0.0/8 any"]},
    {"timeout_tunnel": "1 h"},
    {"consul_ui_access": "write"},
    {"consul_ui_user": "admin"},
    {"consul_ui_service": "bad service"},
])
def test_bad_frontend_settings_raise(changes):
    with pytest.raises(ValueError):
        render_haproxy_config({"backends": {}, "hosts": {}}, dataclasses.replace(HaproxySettings(), **changes))


def test_maxconn_fits_the_fd_limit(tmp_path, haproxy_bin):
    settings = HaproxySettings(runtime_socket=str(tmp_path / "admin.sock"), http_port=_free_port(),
                               stats_port=_free_port())
    assert fit_to_fd_limit(settings, 1048576) is settings
    fit = fit_to_fd_limit(settings, 1024)
    assert (fit.maxconn, fit.http_maxconn, fit.stats_maxconn) == (384, 384, 64)
    # HAProxy itself starts within that limit (and does not with the unfitted settings).
    for candidate, starts in ((fit, True), (settings, False)):
        files = render_haproxy_config({"backends": {}, "hosts": {}}, candidate)
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        proc = subprocess.Popen(["sh", "-c", 'ulimit -n 1024 && exec "$0" -db -f "$1"', haproxy_bin,
                                 str(tmp_path / "haproxy.cfg")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        try:
            output, _unused = proc.communicate(timeout=2)
            running = False
        except subprocess.TimeoutExpired:
            running = True
            proc.terminate()
            output = proc.communicate(timeout=10)[0]
        assert running == starts, output
