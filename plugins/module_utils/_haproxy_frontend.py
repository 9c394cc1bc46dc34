# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the HTTP frontend does to every request before it is routed.

Host normalisation, forwarding headers, the access log format and the Consul UI guard, each as
the HAProxy lines that do it. Pure and stdlib-only; _haproxy_config renders these lines and
checks every value before it gets here, so nothing here can add a line or a directive.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

# One rule for every kind of route (tags, aliases, bare names, domains), because the map holds
# only lower-case names without port or trailing dot: the port goes (RFC 9110 7.2), the name is
# lowered (RFC 3986 3.2.2: case-insensitive), and ONE trailing dot goes (the absolute form
# "www.hello.test." names the same host). Two dots stay, so "www.hello.test.." never routes.
HOST_VARIABLE = "txn.host"
HOST_EXPRESSION = "req.hdr(host),field(1,:),lower,regsub([.]$,)"


def normalise_host(value: str) -> str:
    """The host a Host header value routes by, exactly as HOST_EXPRESSION computes it in HAProxy.

    ``"WWW.Hello.test.:80"`` -> ``"www.hello.test"``. Lookalikes stay different names:
    ``"xwww.hello.test"``, ``"www.hello.test.evil"``. Pure; never raises for a str.
    """
    name = value.split(":", 1)[0].lower()
    return name[:-1] if name.endswith(".") else name


# --- forwarding headers -------------------------------------------------------------------
# The headers Traefik and nginx-proxy send. From a client outside ``trusted_networks`` each is
# removed and set anew; from a trusted one (another proxy in front) its values are kept and the
# client's address is appended to X-Forwarded-For. RFC 7239 "Forwarded" is not sent, but it is
# removed from untrusted clients so that no app can be fooled by one.
FORWARDED_HEADERS = ("X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Real-IP")
_TRUSTED_ACL = "autoproxy_trusted_proxy"


def check_networks(networks: Any, what: str) -> list[str]:
    """CIDR networks (or single addresses) as HAProxy ``src`` patterns; ValueError names the bad one."""
    if not isinstance(networks, (list, tuple)):
        raise ValueError(f"{what} must be a list of networks, e.g. ['10.0.0.0/8']")
    kept = []
    for network in networks:
        if not isinstance(network, str):
            raise ValueError(f"{what}: {network!r} is not a network such as 10.0.0.0/8")
        try:
            kept.append(str(ipaddress.ip_network(network, strict=False)))
        except ValueError:
            raise ValueError(f"{what}: {network!r} is not a network such as 10.0.0.0/8") from None
    return kept


def forwarding_rules(trusted_networks: Iterable[str]) -> list[str]:
    """Frontend lines that give every request X-Forwarded-For/Proto/Host/Port and X-Real-IP."""
    networks = list(trusted_networks)
    untrusted = f" unless {_TRUSTED_ACL}" if networks else ""
    lines = [f"acl {_TRUSTED_ACL} src {' '.join(networks)}"] if networks else []
    lines += [f"http-request del-header {name}{untrusted}" for name in ("Forwarded", "X-Forwarded-For")
              + FORWARDED_HEADERS]
    absent = "unless {{ req.hdr({}) -m found }}".format
    lines += [
        f"http-request set-header X-Forwarded-Proto http {absent('X-Forwarded-Proto')}",
        f"http-request set-header X-Forwarded-Host %[req.hdr(host)] {absent('X-Forwarded-Host')}",
        # The port the client addressed: the one in its Host header, else http's default.
        "http-request set-header X-Forwarded-Port %[req.hdr(host),regsub(^.*:,)]"
        " if !{ req.hdr(X-Forwarded-Port) -m found } { req.hdr(host) -m reg :[0-9]+$ }",
        f"http-request set-header X-Forwarded-Port 80 {absent('X-Forwarded-Port')}",
        f"http-request set-header X-Real-IP %[src] {absent('X-Real-IP')}",
    ]
    # Appends ", <client>" to what a trusted proxy sent, or starts the header afresh.
    lines.append("option forwardfor")
    return lines


# --- access log ----------------------------------------------------------------------------
# Text: HAProxy's own httplog fields, with the routed host added before the request line.
# client:port [accept time] frontend backend/server TR/Tw/Tc/Tr/Ta status bytes termination
# actconn/feconn/beconn/srv_conn/retries srv_queue/backend_queue "host" "request line"
ACCESS_LOG_TEXT = ("%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq "
                   "%{+Q}[var(txn.host)] %{+Q}r")
# JSON: one object per line; strings that come from the client go through the json converter.
_JSON_FIELDS = (
    ("time", '"%[date,utime(%Y-%m-%dT%H:%M:%SZ)]"'),
    ("client", '"%ci"'),
    ("client_port", "%cp"),
    ("frontend", '"%ft"'),
    ("backend", '"%b"'),
    ("server", '"%s"'),
    ("host", '"%[var(txn.host),json(utf8s)]"'),
    ("method", '"%[capture.req.method,json(utf8s)]"'),
    ("uri", '"%[capture.req.uri,json(utf8s)]"'),
    ("status", "%ST"),
    ("bytes", "%B"),
    ("time_request_ms", "%TR"),
    ("time_queue_ms", "%Tw"),
    ("time_connect_ms", "%Tc"),
    ("time_response_ms", "%Tr"),
    ("time_total_ms", "%Ta"),
    ("termination", '"%tsc"'),
    ("retries", "%rc"),
)
ACCESS_LOG_JSON = "{" + ",".join(f'"{name}":{value}' for name, value in _JSON_FIELDS) + "}"
ACCESS_LOG_FORMATS: Mapping[str, str] = {"text": ACCESS_LOG_TEXT, "json": ACCESS_LOG_JSON}


def log_format_line(kind: str) -> str:
    """The ``log-format`` line of an access log kind (``text`` or ``json``), quoted for haproxy.cfg."""
    text = ACCESS_LOG_FORMATS[kind]
    return 'log-format "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the Consul UI guard -------------------------------------------------------------------
CONSUL_UI_ACCESS = ("read_only", "full")
CONSUL_UI_USERLIST = "autoproxy_consul_ui"
_CONSUL_UI_ACL = "autoproxy_consul_ui"
# Consul answers 405 to a GET on its write endpoints already; these are refused here too, by
# path, whatever the method, with the snapshot (a full copy of Consul's state) on top. The path
# is URL-decoded and repeated slashes count as one, as Consul's router sees them.
CONSUL_WRITE_PATHS = (
    "acl/(bootstrap|login|logout)",
    "agent/(check/(register|deregister|pass|warn|fail|update)|service/(register|deregister|maintenance)"
    "|maintenance|join|leave|force-leave|reload|token|connect/authorize)",
    "catalog/(register|deregister)",
    "connect/intentions/exact",
    "event/fire",
    "operator/(raft/peer|keyring|autopilot/configuration)",
    "session/(create|destroy|renew)",
    "snapshot",
    "txn",
)
CONSUL_WRITE_PATH_RE = "^/+v1/+(" + "|".join(path.replace("/", "/+") for path in CONSUL_WRITE_PATHS) + ")"


def consul_ui_hosts(table: Mapping[str, Any], service: str) -> list[str]:
    """Every host the routing table sends to a backend of ``service`` (the Consul UI), sorted."""
    if not service:
        return []
    return sorted(host for host, backend in table["hosts"].items() if table["backends"][backend]["service"] == service)


def consul_ui_rules(hosts: list[str], access: str, with_auth: bool) -> list[str]:
    """Frontend lines guarding the Consul UI's hosts: basic auth if ``with_auth``, and with
    ``access`` ``read_only`` only GET/HEAD to paths outside CONSUL_WRITE_PATH_RE (403 otherwise)."""
    if not hosts:
        return []
    lines = [f"acl {_CONSUL_UI_ACL} var({HOST_VARIABLE}) -m str {' '.join(hosts)}"]
    if with_auth:
        lines.append(f"http-request auth realm consul-ui if {_CONSUL_UI_ACL} !{{ http_auth({CONSUL_UI_USERLIST}) }}")
    if access == "read_only":
        # HAProxy's METH_GET matches GET and HEAD.
        lines += [
            f"http-request deny deny_status 403 if {_CONSUL_UI_ACL} !METH_GET",
            f"http-request deny deny_status 403 if {_CONSUL_UI_ACL} {{ path,url_dec -m reg {CONSUL_WRITE_PATH_RE} }}",
        ]
    return lines


def consul_ui_userlist(user: str, password: str) -> list[str]:
    """The userlist section the Consul UI's basic auth checks against."""
    return [f"userlist {CONSUL_UI_USERLIST}", f"    user {user} insecure-password {password}", ""]
