# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import copy
import dataclasses
import os
import re
import subprocess

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table

DOMAINS = ["127.0.0.1.nip.io", "test"]
HOSTILE_TAGS = [
    "hello",
    "evil\nlisten x",
    "#comment",
    "a;b",
    "'q'",
    '"q"',
    "sp ace",
    "h\u00e9llo",
    "x" * 300,
    "weight=1\nserver evil 6.6.6.6:80",
    "balance=roundrobin #",
    "maxconn=1 2",
    "server_alias=a b",
    "server_aliases=ok.example,bad\nhost",
    "meta=v\nx",
    "sticky_session",
    "weight=7",
]


def instance(service, iid, tags=(), address="172.18.0.5", port=80, passing=True, node="node1"):
    return {
        "service": service,
        "id": iid,
        "node": node,
        "address": address,
        "port": port,
        "tags": list(tags),
        "passing": passing,
    }


SEED = [
    instance("www", "host:web_1:80", ["hello", "sticky_session", "balance=leastconn", "maxconn=100", "weight=10"]),
    instance("www", "host:web_2:80", ["hello"], "172.18.0.6"),
    instance("www", "host:web2_1:80", ["world.dev", "server_aliases=hello.home"], "172.18.0.7"),
    instance("www_hello", "host:hello_1:80", [], "172.18.0.8", passing=False),
    instance("consul-admin_infra", "host:consul:8500", [], "172.18.0.2", 8500),
    instance("proxy-admin_infra", "host:proxy:1936", [], "172.18.0.3", 1936),
    instance("serviceA.prod", "host:a_1:80", ["server_alias=serviceA.prod.example.com"], "fd00::9"),
    instance("named", "host:n_1:80", [], "web.invalid"),
]

HOSTILE = [
    instance("www", "host:web_1:80\nlisten evil", HOSTILE_TAGS),
    instance("evil service", "x", ["hello"]),
    instance("www", "y", ["hello"], address="1.2.3.4\n  server z 6.6.6.6:80"),
    instance("www", "z", ["hello"], port="80 check"),
    instance("w\u00e9b", "u", ["hello"]),
    instance("www", "#;'\"` $(x)", ["hello"]),
]

# Every line must be a comment, a section header or an indented directive built from these characters.
SAFE_LINE_RE = re.compile(r"(?:[A-Za-z0-9_.:/ -]*|    [A-Za-z0-9_.:/ ,!\-\[\]%()\"]*)\Z")
SAFE_MAP_LINE_RE = re.compile(r"[a-z0-9.-]+ [A-Za-z0-9_.-]+_backend\Z")

# Lines the renderer writes whatever the input: fixed text, no value from a table or settings in them.
FIXED_LINES = frozenset(render_haproxy_config(
    build_routing_table([{"service": "consul-admin_infra", "id": "c", "address": "10.0.0.2", "port": 8500}], []),
    HaproxySettings(log_stdout=True))["haproxy.cfg"].split("\n"))


def render(instances, settings=None):
    table = build_routing_table(instances, DOMAINS)
    return table, render_haproxy_config(table, settings or HaproxySettings())


def lines_of(text, header):
    """The directives of one section."""
    lines = text.split("\n")
    start = lines.index(header) + 1
    end = lines.index("", start)
    return [line.strip() for line in lines[start:end]]


def test_render_returns_cfg_and_map():
    _unused, files = render(SEED)
    assert sorted(files) == ["haproxy.cfg", "hosts.map"]
    assert files["haproxy.cfg"].endswith("\n")


def test_global_defaults_frontend_and_stats():
    _unused, files = render(SEED)
    cfg = files["haproxy.cfg"]
    assert lines_of(cfg, "global") == [
        "default-path config",
        "hard-stop-after 30s",
        "mworker-max-reloads 50",
        "stats socket /run/haproxy/admin.sock mode 600 level admin expose-fd listeners",
        "maxconn 4096",
    ]
    assert lines_of(cfg, "defaults") == [
        "mode http",
        "timeout connect 1s",
        "timeout check 1s",
        "timeout client 30s",
        "timeout server 30s",
        "timeout tunnel 1h",
        "timeout http-request 10s",
        "timeout http-keep-alive 10s",
        "retries 3",
        "option redispatch 1",
        "retry-on conn-failure empty-response",
        "option idle-close-on-response",
    ]
    frontend = lines_of(cfg, "frontend http")
    assert frontend[:3] == [
        "bind :80",
        "maxconn 4000",
        "http-request set-var(txn.host) req.hdr(host),field(1,:),lower,regsub([.]$,)",
    ]
    assert "option forwardfor" in frontend
    assert frontend[-4:] == [
        "http-request set-var(txn.backend) var(txn.host),map(hosts.map)",
        "http-request disable-l7-retry if !METH_GET !METH_HEAD !METH_OPTIONS",
        "use_backend %[var(txn.backend)]",
        "default_backend autoproxy_no_route",
    ]
    assert lines_of(cfg, "backend autoproxy_no_route")[0].startswith("http-request return status 503 ")
    assert lines_of(cfg, "listen stats") == [
        "bind :1936",
        "maxconn 64",
        "stats enable",
        "stats uri /",
        "stats refresh 5s",
        "stats show-legends",
    ]


def test_backend_sections():
    table, files = render(SEED)
    cfg = files["haproxy.cfg"]
    hello = lines_of(cfg, "backend hello_www_backend")
    web1 = table["backends"]["hello_www_backend"]["servers"][0]["name"]
    web2 = table["backends"]["hello_www_backend"]["servers"][1]["name"]
    assert hello == [
        "balance leastconn",
        "cookie SRVID insert indirect nocache",
        "default-server check inter 2s fastinter 1000ms fall 2 rise 1 pool-purge-delay 500ms",
        f"server {web1} 172.18.0.5:80 check cookie {web1} maxconn 100 weight 10",
        f"server {web2} 172.18.0.6:80 check cookie {web2} maxconn 100",
    ]
    (server_a,) = table["backends"]["serviceA.prod_backend"]["servers"]
    assert lines_of(cfg, "backend serviceA.prod_backend")[-1] == f"server {server_a['name']} [fd00::9]:80 check"
    (named,) = table["backends"]["named_backend"]["servers"]
    assert lines_of(cfg, "backend named_backend")[-1] == (
        f"server {named['name']} web.invalid:80 check init-addr libc,none"
    )
    assert lines_of(cfg, "backend www_hello_backend") == [
        "balance roundrobin",
        "default-server check inter 2s fastinter 1000ms fall 2 rise 1 pool-purge-delay 500ms",
    ]


def test_backends_are_in_sorted_order():
    _unused, files = render(SEED)
    headers = [line for line in files["haproxy.cfg"].split("\n") if line.startswith("backend ")]
    names = [header.split(" ", 1)[1] for header in headers if header != "backend autoproxy_no_route"]
    assert names == sorted(names)


def test_a_render_limited_to_some_backends_is_the_whole_one_without_the_other_sections():
    table, files = render(SEED)
    part = render_haproxy_config(table, HaproxySettings(), backends=["hello_www_backend"])
    assert part["hosts.map"] == files["hosts.map"]
    whole = [section.strip() for section in files["haproxy.cfg"].split("\n\n")]
    kept = [section for section in whole if not section.startswith("backend ")
            or section.startswith(("backend hello_www_backend\n", "backend autoproxy_"))]
    assert [section.strip() for section in part["haproxy.cfg"].split("\n\n")] == kept
    assert len(kept) < len(whole)


def test_a_render_limited_to_some_backends_checks_those_and_every_host():
    table = build_routing_table([instance("www", "a", ["hello"]), instance("api", "b")], DOMAINS)
    table["backends"]["api_backend"]["servers"][0]["address"] = "1.2.3.4\n  server z 6.6.6.6:80"
    assert "api_backend" not in render_haproxy_config(table, backends=["hello_www_backend"])["haproxy.cfg"]
    with pytest.raises(ValueError, match="api_backend"):
        render_haproxy_config(table, backends=["api_backend"])
    table["hosts"]["api.test"] = "gone_backend"
    with pytest.raises(ValueError, match="unknown backend 'gone_backend'"):
        render_haproxy_config(table, backends=["hello_www_backend"])


@pytest.mark.parametrize("backends, message", [
    (["hello_www_backend", "not_in_the_table"], "backends not in the routing table: 'not_in_the_table'"),
    ("hello_www_backend", "not the text 'hello_www_backend'"),
])
def test_a_render_limited_to_backends_the_table_does_not_have_is_refused(backends, message):
    table, _files = render(SEED)
    with pytest.raises(ValueError, match=message):
        render_haproxy_config(table, backends=backends)


def test_map_file_is_sorted_host_backend_lines():
    table, files = render(SEED)
    lines = files["hosts.map"].splitlines()
    assert lines == sorted(lines)
    assert len(lines) == len(table["hosts"])
    assert "www.hello.127.0.0.1.nip.io hello_www_backend" in lines
    assert "hello.home world.dev_www_backend" in lines
    assert "servicea.prod.example.com.test serviceA.prod_backend" in lines
    assert all(SAFE_MAP_LINE_RE.match(line) for line in lines)


def test_render_is_deterministic():
    assert render(SEED)[1] == render(list(reversed(SEED)))[1]


def test_settings_change_the_output():
    settings = HaproxySettings(
        http_port=8080,
        stats_port=9000,
        stats_user="admin",
        stats_password="s3cr$t:x",
        check_interval="500ms",
        check_fall=3,
        check_rise=2,
        timeout_connect="1s",
        timeout_client="1m",
        timeout_server="2m",
        hard_stop_after="10s",
        max_reloads=5,
        runtime_socket="/tmp/x/admin.sock",
        map_file="maps/hosts.map",
        log_stdout=True,
    )
    _unused, files = render(SEED, settings)
    cfg = files["haproxy.cfg"]
    assert "    bind :8080" in cfg and "    bind :9000" in cfg
    assert "    stats auth admin:s3cr$t:x" in cfg
    assert "    default-server check inter 500ms fall 3 rise 2" in cfg
    assert "    mworker-max-reloads 5" in cfg
    assert "    stats socket /tmp/x/admin.sock mode 600 level admin expose-fd listeners" in cfg
    assert "map(maps/hosts.map)" in cfg
    assert "    log stdout format raw local0" in cfg
    assert "    log-format " in cfg


@pytest.mark.parametrize(
    ("inter", "connect", "words"),
    [
        ("2s", "1s", "check inter 2s fastinter 1000ms fall 2 "),
        ("3000", "250ms", "check inter 3000 fastinter 2750ms fall 2 "),
        # The check's connect waits inter itself: no time is left between failing checks.
        ("1s", "1s", "check inter 1s fall 2 "),
        ("500ms", "2s", "check inter 500ms fall 2 "),
    ],
)
def test_failing_checks_start_one_inter_apart(inter, connect, words):
    # DOWN within inter * fall + timeout connect (docs/RULES.md §6): a failing check's connect
    # waits min(timeout connect, inter) ('timeout check' set), and fastinter is inter less that.
    cfg = render(SEED, HaproxySettings(check_interval=inter, timeout_connect=connect))[1]["haproxy.cfg"]
    assert f"    default-server {words}" in cfg
    assert f"    timeout check {connect}\n" in cfg


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("admin", None),
        (None, "secret"),
        ("ad min", "secret"),
        ("admin", "sec ret"),
        ("admin", "secret\nlisten x"),
        ("admin", "sec#ret"),
        ("admin", "sec'ret"),
        ("admin", 'sec"ret'),
        ("admin", "sec\\ret"),
        ("ad:min", "secret"),
        ("", "secret"),
        ("admin", ""),
        ("admin", "p\u00e4ss"),
        ("admin", "x" * 129),
    ],
)
def test_bad_stats_credentials_raise(user, password):
    with pytest.raises(ValueError, match="stats_"):
        render_haproxy_config({"backends": {}, "hosts": {}}, HaproxySettings(stats_user=user, stats_password=password))


@pytest.mark.parametrize(
    "changes",
    [
        {"http_port": 0},
        {"http_port": "80"},
        {"http_port": True},
        {"stats_port": 70000},
        {"stats_port": 80},
        {"check_interval": "2 s"},
        {"check_interval": "2s\nlisten x"},
        {"timeout_client": "forever"},
        {"hard_stop_after": ""},
        {"check_fall": 0},
        {"check_rise": "1"},
        {"max_reloads": -1},
        {"runtime_socket": "/run/haproxy/admin.sock level admin"},
        {"map_file": "hosts.map),lower"},
        {"map_file": ""},
        {"log_stdout": "yes"},
    ],
)
def test_bad_settings_raise(changes):
    settings = dataclasses.replace(HaproxySettings(), **changes)
    with pytest.raises(ValueError):
        render_haproxy_config({"backends": {}, "hosts": {}}, settings)


def _valid_table():
    return build_routing_table(SEED, DOMAINS)


def _first_server(table):
    return table["backends"]["hello_www_backend"]["servers"][0]


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda t: t["hosts"].__setitem__("evil\nhost", "hello_www_backend"),
        lambda t: t["hosts"].__setitem__("UPPER.case", "hello_www_backend"),
        lambda t: t["hosts"].__setitem__("ok.example", "missing_backend"),
        lambda t: t["hosts"].__setitem__("ok.example", ["hello_www_backend"]),
        lambda t: t["backends"].__setitem__("bad name", {"options": {}, "servers": []}),
        lambda t: t["backends"].__setitem__("autoproxy_no_route", {"options": {}, "servers": []}),
        lambda t: t["backends"].__setitem__("stats", {"options": {}, "servers": []}),
        lambda t: t["backends"].__setitem__("x_backend", {"options": {}}),
        lambda t: t["backends"].__setitem__("x_backend", "nope"),
        lambda t: t["backends"]["hello_www_backend"]["options"].__setitem__("balance", "roundrobin\n"),
        lambda t: t["backends"]["hello_www_backend"]["options"].__setitem__("maxconn", "100"),
        lambda t: t["backends"]["hello_www_backend"]["options"].__setitem__("maxconn", 0),
        lambda t: t["backends"]["hello_www_backend"]["options"].__setitem__("sticky_session", "yes"),
        lambda t: t["backends"]["hello_www_backend"]["options"].__setitem__("http-request", "deny"),
        lambda t: t["backends"]["hello_www_backend"].__setitem__("options", ["balance"]),
        lambda t: _first_server(t).__setitem__("name", "a b"),
        lambda t: _first_server(t).__setitem__("name", "x" * 65),
        lambda t: _first_server(t).__setitem__("address", "1.2.3.4 backup"),
        lambda t: _first_server(t).__setitem__("address", "1.2.3.4\nlisten x"),
        lambda t: _first_server(t).__setitem__("port", "80"),
        lambda t: _first_server(t).__setitem__("port", 0),
        lambda t: _first_server(t).__setitem__("weight", 257),
        lambda t: _first_server(t).__setitem__("weight", "1 backup"),
        lambda t: t["backends"]["hello_www_backend"]["servers"].append(copy.deepcopy(_first_server(t))),
        lambda t: t["backends"]["hello_www_backend"]["servers"].append("server x 1.2.3.4:80"),
        lambda t: t.pop("hosts"),
    ],
)
def test_render_rechecks_every_value(corrupt):
    table = _valid_table()
    corrupt(table)
    with pytest.raises(ValueError):
        render_haproxy_config(table, HaproxySettings())


def test_hostile_input_cannot_add_anything_to_the_config():
    table, files = render(HOSTILE + SEED)
    assert table["warnings"]
    for line in files["haproxy.cfg"].split("\n"):
        if line.startswith("#"):
            continue
        assert line in FIXED_LINES or SAFE_LINE_RE.match(line), line
    for line in files["hosts.map"].splitlines():
        assert SAFE_MAP_LINE_RE.match(line), line
    sections = [line for line in files["haproxy.cfg"].split("\n") if line and not line.startswith((" ", "#"))]
    assert sections == ["global", "defaults", "frontend http", "backend autoproxy_no_route", "listen stats"] + [
        f"backend {name}" for name in sorted(table["backends"])
    ]
    server_lines = [line for line in files["haproxy.cfg"].split("\n") if line.startswith("    server ")]
    assert len(server_lines) == sum(len(b["servers"]) for b in table["backends"].values())
    assert "6.6.6.6" not in files["haproxy.cfg"]


@pytest.mark.parametrize("log_stdout", [False, True])
def test_haproxy_accepts_the_rendered_config(tmp_path, log_stdout, haproxy_bin):
    settings = HaproxySettings(
        stats_user="admin",
        stats_password="pa$$w0rd!",
        runtime_socket=str(tmp_path / "admin.sock"),
        log_stdout=log_stdout,
    )
    _unused, files = render(HOSTILE + SEED, settings)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    # From another directory, so only 'default-path config' can make the relative map path resolve.
    result = subprocess.run(
        [haproxy_bin, "-c", "-f", str(tmp_path / "haproxy.cfg")],
        cwd=os.path.dirname(str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ALERT" not in result.stdout + result.stderr


def test_haproxy_accepts_an_empty_table(tmp_path, haproxy_bin):
    settings = HaproxySettings(runtime_socket=str(tmp_path / "admin.sock"))
    files = render_haproxy_config(build_routing_table([], []), settings)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        [haproxy_bin, "-c", "-f", str(tmp_path / "haproxy.cfg")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
