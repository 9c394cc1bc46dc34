# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._containers import (
    AgentOptions,
    container_name,
    container_services,
    service_keys,
)

HOST = "docker1"
IP = "172.18.0.5"


def inspect(
    name="web_1",
    image="nginx:1.25",
    env=(),
    labels=None,
    exposed=("80/tcp",),
    ports=None,
    networks=None,
    network_mode="demo",
    running=True,
):
    """A container as Docker's GET /containers/{id}/json describes it (only the fields that matter)."""
    if networks is None:
        networks = {"demo": {"IPAddress": IP, "GlobalIPv6Address": ""}}
    if ports is None:
        ports = {port: None for port in exposed}
    return {
        "Id": "3f4e8b2c9a1d" + "0" * 52,
        "Name": "/" + name,
        "Config": {
            "Image": image,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", *env],
            "Labels": dict(labels or {}),
            "ExposedPorts": {port: {} for port in exposed},
        },
        "HostConfig": {"NetworkMode": network_mode},
        "NetworkSettings": {"Ports": ports, "Networks": networks, "IPAddress": ""},
        "State": {"Running": running, "Status": "running" if running else "exited"},
    }


def opts(**kwargs):
    kwargs.setdefault("hostname", HOST)
    return AgentOptions(**kwargs)


def run(container, options=None):
    return container_services(container, options or opts())


def meta(**extra):
    result = {"autoproxy_container": "web_1"}
    result.update(extra)
    return result


# --------------------------------------------------------------------------------------------
# the seed demo, exactly


def test_seed_demo_container():
    container = inspect(
        env=["SERVICE_NAME=www", "SERVICE_TAGS=hello", "SERVICE_CHECK_HTTP=/", "SERVICE_CHECK_INTERVAL=5s"]
    )
    registrations, warnings = run(container, opts(owner="registrator@docker1"))
    assert warnings == []
    assert registrations == [
        {
            "ID": "docker1:web_1:80",
            "Name": "www",
            "Address": IP,
            "Port": 80,
            "Tags": ["hello"],
            "Meta": {"autoproxy_owner": "registrator@docker1", "autoproxy_container": "web_1"},
            "Check": {"HTTP": "http://172.18.0.5:80/", "Interval": "5s"},
        }
    ]


# --------------------------------------------------------------------------------------------
# names, IDs, tags: (container, options, expected [(ID, Name, Port, Tags)])

NAMING_CASES = [
    pytest.param(
        inspect(image="gliderlabs/foobar:1"),
        opts(),
        [("docker1:web_1:80", "foobar", 80, [])],
        id="default-name-from-image",
    ),
    pytest.param(
        inspect(image="registry.example.com:5000/team/api@sha256:" + "a" * 64),
        opts(),
        [("docker1:web_1:80", "api", 80, [])],
        id="default-name-strips-registry-port-and-digest",
    ),
    pytest.param(
        inspect(exposed=("80/tcp", "443/tcp")),
        opts(),
        [("docker1:web_1:80", "nginx-80", 80, []), ("docker1:web_1:443", "nginx-443", 443, [])],
        id="multi-port-default-names",
    ),
    pytest.param(
        inspect(exposed=("80/tcp", "443/tcp"), env=["SERVICE_NAME=www"]),
        opts(),
        [("docker1:web_1:80", "www-80", 80, []), ("docker1:web_1:443", "www-443", 443, [])],
        id="multi-port-generic-name-gets-port-suffix",
    ),
    pytest.param(
        inspect(
            exposed=("80/tcp", "443/tcp"),
            env=["SERVICE_NAME=www", "SERVICE_443_NAME=secure", "SERVICE_TAGS=a", "SERVICE_443_TAGS=b"],
        ),
        opts(),
        [("docker1:web_1:80", "www-80", 80, ["a"]), ("docker1:web_1:443", "secure", 443, ["b"])],
        id="port-specific-override-wins-and-has-no-suffix",
    ),
    pytest.param(
        inspect(exposed=("80/tcp", "443/tcp"), env=["SERVICE_NAME=www", "SERVICE_443_IGNORE=yes"]),
        opts(),
        [("docker1:web_1:80", "www-80", 80, [])],
        id="port-ignore-skips-port-name-keeps-suffix-like-registrator",
    ),
    pytest.param(
        inspect(env=["SERVICE_NAME=from-env", "SERVICE_TAGS=env"], labels={"SERVICE_NAME": "from-label"}),
        opts(),
        [("docker1:web_1:80", "from-label", 80, ["env"])],
        id="label-wins-over-env",
    ),
    pytest.param(
        inspect(env=[r"SERVICE_TAGS=a\,b, c ,,c,d"]),
        opts(tags=("edge", "d")),
        [("docker1:web_1:80", "nginx", 80, ["a,b", "c", "d", "edge"])],
        id="tags-escaped-comma-trimmed-deduplicated-plus-agent-tags",
    ),
    pytest.param(
        inspect(env=["SERVICE_TAGS=x"]),
        opts(tags="one, two"),
        [("docker1:web_1:80", "nginx", 80, ["x", "one", "two"])],
        id="agent-tags-as-comma-string",
    ),
    pytest.param(
        inspect(exposed=("53/udp",), env=["SERVICE_NAME=dns", "SERVICE_TAGS=internal"]),
        opts(),
        [("docker1:web_1:53:udp", "dns", 53, ["internal", "udp"])],
        id="udp-id-suffix-and-tag",
    ),
    pytest.param(
        inspect(exposed=("53/tcp", "53/udp"), env=["SERVICE_NAME=dns"]),
        opts(),
        [("docker1:web_1:53", "dns-53", 53, []), ("docker1:web_1:53:udp", "dns-53", 53, ["udp"])],
        id="same-port-tcp-and-udp",
    ),
    pytest.param(inspect(env=["SERVICE_ID=custom-id"]), opts(), [("custom-id", "nginx", 80, [])], id="id-override"),
    pytest.param(
        inspect(exposed=("80/tcp", "8080/tcp"), env=["SERVICE_80_ID=a", "SERVICE_8080_ID=b"]),
        opts(),
        [("a", "nginx-80", 80, []), ("b", "nginx-8080", 8080, [])],
        id="port-specific-id-override",
    ),
    pytest.param(
        inspect(exposed=("80/tcp", "443/tcp"), env=["SERVICE_80_NAME=www"]),
        opts(explicit=True),
        [("docker1:web_1:80", "www", 80, [])],
        id="explicit-skips-unnamed-ports",
    ),
    pytest.param(inspect(), opts(explicit=True), [], id="explicit-skips-unnamed-container"),
    pytest.param(inspect(env=["SERVICE_IGNORE=true", "SERVICE_NAME=www"]), opts(), [], id="ignore-container"),
    pytest.param(inspect(labels={"SERVICE_IGNORE": "1"}), opts(), [], id="ignore-container-by-label"),
    pytest.param(
        inspect(env=["SERVICE_IGNORE=1", "SERVICE_abc_NAME=x", "SERVICE_CHECK_INTERVAL=bad"]),
        opts(),
        [],
        id="ignored-container-gives-no-warnings",
    ),
    pytest.param(
        inspect(exposed=("80/tcp", "443/tcp"), env=["SERVICE_IGNORE=1", "SERVICE_443_IGNORE="]),
        opts(),
        [("docker1:web_1:443", "nginx-443", 443, [])],
        id="empty-port-ignore-overrides-like-registrator",
    ),
    pytest.param(
        inspect(env=["SERVICE_NAME="]),
        opts(),
        [("docker1:web_1:80", "nginx", 80, [])],
        id="empty-name-is-unset-like-registrator",
    ),
    pytest.param(
        inspect(env=["service_name=lower"]),
        opts(),
        [("docker1:web_1:80", "nginx", 80, [])],
        id="prefix-is-case-sensitive",
    ),
    pytest.param(
        inspect(env=["SERVICE_name=www", "SERVICE_80_Tags=t"]),
        opts(),
        [("docker1:web_1:80", "www", 80, ["t"])],
        id="key-after-prefix-is-case-insensitive",
    ),
    pytest.param(inspect(exposed=()), opts(), [], id="no-ports-no-registration"),
    pytest.param(inspect(running=False), opts(), [], id="stopped-container"),
]


@pytest.mark.parametrize("container, options, expected", NAMING_CASES)
def test_names_ids_tags(container, options, expected):
    registrations, warnings = run(container, options)
    assert warnings == []
    assert [(r["ID"], r["Name"], r["Port"], r["Tags"]) for r in registrations] == expected


# --------------------------------------------------------------------------------------------
# addresses and ports: (container, options, expected [(Address, Port)], expected warnings)

PUBLISHED = {
    "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}, {"HostIp": "::", "HostPort": "32768"}],
    "443/tcp": None,
}
TWO_NETWORKS = {"zeta": {"IPAddress": "10.0.9.2"}, "alpha": {"IPAddress": "10.0.1.2"}, "demo": {"IPAddress": IP}}

ADDRESS_CASES = [
    pytest.param(
        inspect(exposed=("80/tcp", "443/tcp"), ports=PUBLISHED),
        opts(mode="host", host_ip="192.0.2.10"),
        [("192.0.2.10", 32768)],
        [],
        id="host-mode-only-published-ports-with-ip",
    ),
    pytest.param(
        inspect(ports={"80/tcp": [{"HostIp": "192.0.2.20", "HostPort": "8080"}]}),
        opts(mode="host"),
        [("192.0.2.20", 8080)],
        [],
        id="host-mode-specific-host-ip-binding",
    ),
    pytest.param(
        inspect(ports=PUBLISHED, exposed=("80/tcp", "443/tcp")),
        opts(mode="host"),
        [],
        ["container 'web_1': no address to register: set the agent's host IP (registrator's -ip)"],
        id="host-mode-wildcard-binding-without-ip-warns",
    ),
    pytest.param(inspect(), opts(mode="host", host_ip="192.0.2.10"), [], [], id="host-mode-unpublished-port"),
    pytest.param(
        inspect(network_mode="host", networks={"host": {"IPAddress": ""}}, ports={}),
        opts(host_ip="192.0.2.10"),
        [("192.0.2.10", 80)],
        [],
        id="internal-mode-host-network",
    ),
    pytest.param(
        inspect(network_mode="host", networks={"host": {"IPAddress": ""}}, ports={}),
        opts(mode="host", host_ip="192.0.2.10"),
        [("192.0.2.10", 80)],
        [],
        id="host-mode-host-network",
    ),
    pytest.param(
        inspect(network_mode="host", networks={"host": {"IPAddress": ""}}, ports={}),
        opts(),
        [],
        ["container 'web_1': no address to register: set the agent's host IP (registrator's -ip)"],
        id="host-network-without-ip-warns",
    ),
    pytest.param(
        inspect(networks=TWO_NETWORKS, network_mode="demo"),
        opts(network="zeta"),
        [("10.0.9.2", 80)],
        [],
        id="multi-network-option-wins",
    ),
    pytest.param(
        inspect(networks=TWO_NETWORKS, network_mode="demo"),
        opts(network="absent"),
        [(IP, 80)],
        [],
        id="multi-network-falls-back-to-network-mode",
    ),
    pytest.param(
        inspect(networks=TWO_NETWORKS, network_mode="bridge"),
        opts(),
        [("10.0.1.2", 80)],
        [],
        id="multi-network-deterministic-first-by-name",
    ),
    pytest.param(
        inspect(networks=TWO_NETWORKS, network_mode="demo", labels={"autoproxy.network": "alpha"}),
        opts(network="zeta"),
        [("10.0.1.2", 80)],
        [],
        id="network-label-wins-over-option",
    ),
    pytest.param(
        inspect(networks=TWO_NETWORKS, network_mode="demo", labels={"autoproxy.network": "absent"}),
        opts(network="zeta"),
        [("10.0.9.2", 80)],
        ["container 'web_1': label autoproxy.network='absent' ignored: the container has no IP on that network"],
        id="network-label-unknown-warns-and-falls-back",
    ),
    pytest.param(
        inspect(
            networks={"v6": {"IPAddress": "", "GlobalIPv6Address": "2001:db8::5"}},
            network_mode="v6",
            env=["SERVICE_CHECK_HTTP=/health"],
        ),
        opts(),
        [("2001:db8::5", 80)],
        [],
        id="ipv6-only-network",
    ),
    pytest.param(
        inspect(networks={}, network_mode="none"),
        opts(),
        [],
        ["container 'web_1': no address to register: the container has no IP address on any network"],
        id="no-ip-warns",
    ),
    pytest.param(
        inspect(labels={"ip": "10.20.30.40/24"}),
        opts(ip_from_label="ip"),
        [("10.20.30.40", 80)],
        [],
        id="ip-from-label-strips-cidr",
    ),
    pytest.param(
        inspect(labels={"ip": "10.20.30.40"}, ports=PUBLISHED),
        opts(mode="host", ip_from_label="ip"),
        [("10.20.30.40", 32768)],
        [],
        id="ip-from-label-wins-in-host-mode",
    ),
    pytest.param(inspect(), opts(ip_from_label="ip"), [(IP, 80)], [], id="ip-from-label-missing-label"),
    pytest.param(
        inspect(labels={"ip": "not-an-ip/8"}),
        opts(ip_from_label="ip"),
        [(IP, 80)],
        ["container 'web_1': label ip='not-an-ip/8' ignored: not an IP address"],
        id="ip-from-label-bad-value-warns",
    ),
    pytest.param(
        inspect(labels={"ip": "fe80::1%eth0"}),
        opts(ip_from_label="ip"),
        [(IP, 80)],
        ["container 'web_1': label ip='fe80::1%eth0' ignored: not an IP address"],
        id="ip-from-label-with-zone-index-warns",
    ),
    pytest.param(
        inspect(network_mode="container:" + "b" * 64, networks={}),
        opts(),
        [],
        [
            "container 'web_1': no address to register: network mode 'container:" + "b" * 64 + "' shares "
            "another container's network (give the address in the agent's ip_from_label label)"
        ],
        id="container-network-mode-warns",
    ),
    pytest.param(
        inspect(exposed=("80/tcp", "http/tcp")),
        opts(),
        [(IP, 80)],
        ["container 'web_1': port 'http/tcp' ignored: not a port like 80/tcp"],
        id="bad-exposed-port-key",
    ),
]


@pytest.mark.parametrize("container, options, expected, expected_warnings", ADDRESS_CASES)
def test_addresses_and_ports(container, options, expected, expected_warnings):
    registrations, warnings = run(container, options)
    assert warnings == expected_warnings
    assert [(r["Address"], r["Port"]) for r in registrations] == expected


def test_host_mode_id_uses_exposed_port_like_registrator():
    registrations, _unused = run(
        inspect(ports=PUBLISHED, exposed=("80/tcp", "443/tcp")), opts(mode="host", host_ip="192.0.2.10")
    )
    # Only one port is published, so the name has no -<port> suffix.
    assert [(r["ID"], r["Name"]) for r in registrations] == [("docker1:web_1:80", "nginx")]


# --------------------------------------------------------------------------------------------
# checks: (env, expected Check or None)

CHECK_CASES = [
    pytest.param(
        [
            "SERVICE_CHECK_HTTP=/health",
            "SERVICE_CHECK_TIMEOUT=2s",
            "SERVICE_CHECK_HTTP_METHOD=get",
            "SERVICE_CHECK_INITIAL_STATUS=Passing",
            "SERVICE_CHECK_DEREGISTER_AFTER=1m",
        ],
        {
            "HTTP": "http://172.18.0.5:80/health",
            "Method": "GET",
            "Timeout": "2s",
            "Interval": "10s",
            "Status": "passing",
            "DeregisterCriticalServiceAfter": "1m",
        },
        id="http-full",
    ),
    pytest.param(
        [
            "SERVICE_CHECK_HTTPS=/",
            "SERVICE_CHECK_HTTPS_METHOD=HEAD",
            "SERVICE_CHECK_TLS_SKIP_VERIFY=true",
            "SERVICE_CHECK_INTERVAL=1m30s",
        ],
        {"HTTP": "https://172.18.0.5:80/", "Method": "HEAD", "TLSSkipVerify": True, "Interval": "1m30s"},
        id="https-skip-verify",
    ),
    pytest.param(
        ["SERVICE_CHECK_HTTPS=/", "SERVICE_CHECK_TLS_SKIP_VERIFY=false"],
        {"HTTP": "https://172.18.0.5:80/", "Interval": "10s"},
        id="https-verify",
    ),
    pytest.param(
        ["SERVICE_CHECK_TCP=true", "SERVICE_CHECK_TIMEOUT=500ms"],
        {"TCP": "172.18.0.5:80", "Interval": "10s", "Timeout": "500ms"},
        id="tcp",
    ),
    pytest.param(["SERVICE_CHECK_TCP=false"], None, id="tcp-false-is-off"),
    pytest.param(["SERVICE_CHECK_TTL=30s", "SERVICE_CHECK_INTERVAL=5s"], {"TTL": "30s"}, id="ttl-has-no-interval"),
    pytest.param(
        ["SERVICE_CHECK_SCRIPT=curl -f http://$SERVICE_IP:$SERVICE_PORT/"],
        {"Args": ["sh", "-c", "curl -f http://172.18.0.5:80/"], "Interval": "10s"},
        id="script",
    ),
    pytest.param(
        ["SERVICE_CHECK_GRPC=true", "SERVICE_CHECK_GRPC_USE_TLS=true"],
        {"GRPC": "172.18.0.5:80", "GRPCUseTLS": True, "Interval": "10s"},
        id="grpc",
    ),
    pytest.param(
        ["SERVICE_CHECK_TCP=true", "SERVICE_CHECK_HTTP=/"],
        {"HTTP": "http://172.18.0.5:80/", "Interval": "10s"},
        id="http-before-tcp",
    ),
    pytest.param(["SERVICE_CHECK_TCP=true", "SERVICE_CHECK_TTL=15s"], {"TTL": "15s"}, id="ttl-before-tcp"),
    pytest.param(["SERVICE_CHECK_INTERVAL=5s"], None, id="no-check-kind-no-check"),
    pytest.param(
        ["SERVICE_CHECK_HTTP=/", "SERVICE_80_CHECK_HTTP=/port-specific"],
        {"HTTP": "http://172.18.0.5:80/port-specific", "Interval": "10s"},
        id="port-specific-check",
    ),
]


@pytest.mark.parametrize("env, expected", CHECK_CASES)
def test_checks(env, expected):
    registrations, warnings = run(inspect(env=env))
    assert warnings == []
    assert registrations[0].get("Check") == expected
    # check_* settings are never copied into Meta (registrator#620).
    assert registrations[0]["Meta"] == meta()


def test_http_check_ipv6_is_bracketed():
    container = inspect(
        networks={"v6": {"GlobalIPv6Address": "2001:db8::5"}}, network_mode="v6", env=["SERVICE_CHECK_HTTP=/health"]
    )
    registrations, _unused = run(container)
    assert registrations[0]["Check"]["HTTP"] == "http://[2001:db8::5]:80/health"


def test_check_uses_published_address_in_host_mode():
    registrations, _unused = run(
        inspect(ports=PUBLISHED, exposed=("80/tcp",), env=["SERVICE_CHECK_TCP=1"]),
        opts(mode="host", host_ip="192.0.2.10"),
    )
    assert registrations[0]["Check"] == {"TCP": "192.0.2.10:32768", "Interval": "10s"}


def test_default_check_interval_option():
    registrations, _unused = run(inspect(env=["SERVICE_CHECK_TCP=1"]), opts(default_check_interval="3s"))
    assert registrations[0]["Check"]["Interval"] == "3s"


# --------------------------------------------------------------------------------------------
# bad values: (env or labels, expected Check, expected warnings); the service still registers

W = "container 'web_1': "
BAD_VALUE_CASES = [
    pytest.param(
        ["SERVICE_CHECK_HTTP=/", "SERVICE_CHECK_INTERVAL=5 seconds"],
        {"HTTP": "http://172.18.0.5:80/", "Interval": "10s"},
        [W + "SERVICE_CHECK_INTERVAL='5 seconds' ignored: not a duration above zero like 10s, 500ms, 1m; using 10s"],
        id="bad-interval-uses-default",
    ),
    pytest.param(
        [
            "SERVICE_CHECK_TCP=1",
            "SERVICE_CHECK_TIMEOUT=-1s",
            "SERVICE_CHECK_DEREGISTER_AFTER=soon",
            "SERVICE_CHECK_INITIAL_STATUS=ok",
        ],
        {"TCP": "172.18.0.5:80", "Interval": "10s"},
        [
            W + "SERVICE_CHECK_TIMEOUT='-1s' ignored: not a duration above zero like 10s, 500ms, 1m",
            W + "SERVICE_CHECK_INITIAL_STATUS='ok' ignored: not one of passing, warning, critical",
            W + "SERVICE_CHECK_DEREGISTER_AFTER='soon' ignored: not a duration above zero like 10s, 500ms, 1m",
        ],
        id="bad-optional-settings-dropped",
    ),
    pytest.param(
        ["SERVICE_CHECK_HTTP=health", "SERVICE_CHECK_TCP=1"],
        {"TCP": "172.18.0.5:80", "Interval": "10s"},
        [W + "SERVICE_CHECK_HTTP='health' ignored: not an HTTP path like /health"],
        id="bad-http-path-falls-through",
    ),
    pytest.param(
        ["SERVICE_CHECK_HTTP=/", "SERVICE_CHECK_HTTP_METHOD=GET /x"],
        {"HTTP": "http://172.18.0.5:80/", "Interval": "10s"},
        [W + "SERVICE_CHECK_HTTP_METHOD='GET /x' ignored: not an HTTP method like GET or HEAD"],
        id="bad-method",
    ),
    pytest.param(
        ["SERVICE_CHECK_TTL=0s"],
        None,
        [W + "SERVICE_CHECK_TTL='0s' ignored: not a duration above zero like 10s, 500ms, 1m"],
        id="zero-ttl",
    ),
    pytest.param(
        ["SERVICE_CHECK_CMD=/bin/true"],
        None,
        [
            W + "SERVICE_CHECK_CMD='/bin/true' ignored: needs the check-cmd helper of the old progrium/consul "
            "image; use SERVICE_CHECK_SCRIPT"
        ],
        id="check-cmd-unsupported",
    ),
    pytest.param(
        ["SERVICE_CHECK_HTTPPATH=/"],
        None,
        [W + "SERVICE_CHECK_HTTPPATH='/' ignored: not a check setting registrator knows"],
        id="unknown-check-key",
    ),
    pytest.param(
        ["SERVICE_abc_NAME=www", "SERVICE_8080_NAME=alt", "SERVICE_70000_TAGS=x"],
        None,
        [
            W + "SERVICE_70000_TAGS='x' ignored: '70000' is not a port number",
            W + "SERVICE_8080_NAME='alt' ignored: the container does not expose port 8080",
            W + "SERVICE_abc_NAME='www' ignored: 'abc' is not a port number",
        ],
        id="bad-port-keys",
    ),
    pytest.param(
        ["SERVICE_\u00b2_NAME=x", "SERVICE_" + "9" * 5000 + "_NAME=y"],
        None,
        [
            W + "SERVICE_" + "9" * 72 + "...='y' ignored: '" + "9" * 80 + "...' is not a port number",
            W + "SERVICE_\u00b2_NAME='x' ignored: '\u00b2' is not a port number",
        ],
        id="odd-digit-port-keys",
    ),
]


@pytest.mark.parametrize("env, expected_check, expected_warnings", BAD_VALUE_CASES)
def test_bad_values_warn_and_service_still_registers(env, expected_check, expected_warnings):
    registrations, warnings = run(inspect(env=env))
    assert warnings == expected_warnings
    assert len(registrations) == 1
    assert registrations[0].get("Check") == expected_check


@pytest.mark.parametrize("value, expected", [
    (r"a\,b, c ,,c,d", ["a,b", "c", "d"]),
    (r"x\\,y", ["x\\,y"]),
    ("\\", ["\\"]),
    (r"a\,", ["a,"]),
    (",,", []),
    (" , ", []),
    (r"a\b,\,", ["a\\b", ","]),
])
def test_tags_split_like_registrator(value, expected):
    # registrator's rule for SERVICE_TAGS, shared with the service_tags filter: ',' splits, '\,' is a
    # comma, a backslash before anything else stays; tags are trimmed, empty ones and repeats dropped.
    registrations, _unused = run(inspect(env=["SERVICE_TAGS=" + value]))
    assert registrations[0]["Tags"] == expected


@pytest.mark.parametrize("value, expected", [
    (r"a\,b, c ,,d", ("a,b", "c", "d")),
    (r"x\\,y", ("x\\,y",)),
    (r"a\b,\,", ("a\\b", ",")),
    (r"dc1\,rack2", ("dc1,rack2",)),
])
def test_agent_tags_split_like_service_tags(value, expected):
    # registrator's -tags is one comma-separated argument; '\,' is a comma there as in SERVICE_TAGS.
    options = opts(tags=value)
    assert options.tags == expected
    registrations, _unused = run(inspect(env=["SERVICE_TAGS=" + value]), options)
    assert registrations[0]["Tags"] == list(expected)


def test_tag_with_control_character_dropped():
    registrations, warnings = run(inspect(labels={"SERVICE_TAGS": "ok,bad\nline"}))
    assert registrations[0]["Tags"] == ["ok"]
    assert warnings == [W + r"SERVICE_TAGS='bad\x0aline' tag dropped: it has control characters"]


@pytest.mark.parametrize(
    "env, warning",
    [
        pytest.param(
            ["SERVICE_NAME=  "], "SERVICE_NAME='  ' gives no service name; port 80 not registered", id="blank"
        ),
        pytest.param(
            ["SERVICE_NAME=my web"],
            "SERVICE_NAME='my web' gives an invalid service name (letters, digits, "
            "'_', '-', '.' only); port 80 not registered",
            id="space",
        ),
        pytest.param(
            ["SERVICE_NAME=a/b"],
            "SERVICE_NAME='a/b' gives an invalid service name (letters, digits, "
            "'_', '-', '.' only); port 80 not registered",
            id="slash",
        ),
    ],
)
def test_bad_name_skips_only_that_service(env, warning):
    container = inspect(exposed=("80/tcp", "443/tcp"), env=["SERVICE_443_NAME=secure", *env])
    registrations, warnings = run(container)
    assert [r["Name"] for r in registrations] == ["secure"]
    assert warnings == [W + warning]


def test_bad_id_falls_back_to_default():
    registrations, warnings = run(inspect(env=["SERVICE_ID=a/b"]))
    assert registrations[0]["ID"] == "docker1:web_1:80"
    assert warnings == [
        W + "SERVICE_ID='a/b' ignored: an ID must not have spaces, '/', '?', '#', '%'; using docker1:web_1:80"
    ]


def test_duplicate_id_on_two_ports_registers_first_only():
    registrations, warnings = run(inspect(exposed=("80/tcp", "443/tcp"), env=["SERVICE_ID=same"]))
    assert [(r["ID"], r["Port"]) for r in registrations] == [("same", 80)]
    assert warnings == [W + "port 443 not registered: service ID 'same' is already used by another port"]


# --------------------------------------------------------------------------------------------
# meta


def test_meta_from_other_keys_port_specific_and_invalid_dropped():
    container = inspect(
        exposed=("80/tcp", "443/tcp"),
        env=[
            "SERVICE_NAME=www",
            "SERVICE_VERSION=1.2",
            "SERVICE_443_VERSION=1.3",
            "SERVICE_public_ipaddress=1.2.3.4",
            "SERVICE_CONSUL-ID=x",
            "SERVICE_AUTOPROXY_OWNER=someone-else",
            "SERVICE_LONG=" + "v" * 513,
        ],
        labels={"SERVICE_traefik.enable": "true"},
    )
    registrations, warnings = run(container, opts(owner="me"))
    assert registrations[0]["Meta"] == {
        "autoproxy_owner": "me",
        "autoproxy_container": "web_1",
        "public_ipaddress": "1.2.3.4",
        "version": "1.2",
    }
    assert registrations[1]["Meta"]["version"] == "1.3"
    assert warnings == [
        W + "SERVICE_AUTOPROXY_OWNER='someone-else' dropped: Meta keys starting with consul- or autoproxy_ "
        "are reserved",
        W + "SERVICE_CONSUL-ID='x' dropped: Meta keys starting with consul- or autoproxy_ are reserved",
        W + "SERVICE_LONG='" + "v" * 80 + "...' dropped: Meta values have at most 512 characters",
        W + "SERVICE_traefik.enable='true' dropped: Meta keys have 1-128 letters, digits, '_' or '-'",
    ]


def test_meta_limited_to_64_keys_including_ours():
    env = [f"SERVICE_K{i:03d}=v" for i in range(70)]
    registrations, warnings = run(inspect(env=env), opts(owner="me"))
    assert len(registrations[0]["Meta"]) == 64
    assert "k061" in registrations[0]["Meta"] and "k062" not in registrations[0]["Meta"]
    assert len(warnings) == 8
    assert warnings[0] == W + "SERVICE_K062='v' dropped: Consul allows at most 64 Meta keys"


# --------------------------------------------------------------------------------------------
# helpers and options


def test_service_keys_merges_env_and_labels_label_wins():
    container = inspect(
        env=["SERVICE_NAME=env", "SERVICE_80_TAGS=a", "OTHER=x", "SERVICE_=empty", "NOEQUALS"],
        labels={"SERVICE_NAME": "label", "com.example": "y"},
    )
    assert service_keys(container) == {"name": "label", "80_tags": "a"}


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"Name": "/web_1", "Id": "abc"}, "web_1"),
        ({"Name": "", "Id": "3f4e8b2c9a1d00000000"}, "3f4e8b2c9a1d"),
        ({}, ""),
    ],
)
def test_container_name(data, expected):
    assert container_name(data) == expected


@pytest.mark.parametrize(
    "garbage",
    [
        {},
        {"Config": None, "NetworkSettings": None, "HostConfig": None},
        {"Config": {"Env": None, "Labels": None, "ExposedPorts": None}, "NetworkSettings": {"Ports": None}},
        {
            "Config": {"Env": [1, None, "SERVICE_NAME"], "Labels": {"SERVICE_TAGS": 3}, "ExposedPorts": {"80/tcp": {}}},
            "NetworkSettings": {"Ports": {"\u00b2/tcp": [{"HostPort": "\u00b2"}]}, "Networks": {"n": None}},
        },
        {
            "Config": {"Env": [1, None, "SERVICE_NAME"], "Labels": {"SERVICE_TAGS": 3}, "ExposedPorts": {"80/tcp": {}}},
            "NetworkSettings": {"Ports": {"80/tcp": [{"HostPort": None}]}, "Networks": {"n": None}},
        },
        None,
    ],
)
def test_odd_inspect_data_never_raises(garbage):
    registrations, warnings = container_services(garbage, opts())
    assert isinstance(registrations, list) and isinstance(warnings, list)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "internal-ish"},
        {"hostname": ""},
        {"hostname": "host:1"},
        {"host_ip": "not an ip"},
        {"host_ip": "fe80::1%eth0"},
        {"host_ip": 3232235777},
        {"network": ""},
        {"tags": ("ok", "bad\n")},
        {"tags": None},
        {"default_check_interval": "10"},
        {"default_check_interval": "0s"},
        {"default_check_interval": "-10s"},
        {"owner": "x" * 513},
    ],
)
def test_bad_options_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        opts(**kwargs)


def test_script_checks_can_be_refused():
    registrations, warnings = run(
        inspect(env=["SERVICE_CHECK_SCRIPT=true", "SERVICE_CHECK_TCP=1"]), opts(script_checks=False)
    )
    assert registrations[0]["Check"] == {"TCP": "172.18.0.5:80", "Interval": "10s"}
    assert warnings == [W + "SERVICE_CHECK_SCRIPT='true' ignored: script checks are disabled for this agent"]
