# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import ipaddress
import json
import random

import hypothesis
import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._routing import (
    SERVER_NAME_RE,
    build_routing_table,
    is_ip_literal,
    route_lines,
    server_name,
    valid_address,
)

DOMAINS = ["127.0.0.1.nip.io", "test"]


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


def under_domains(*hosts):
    return sorted(h for host in hosts for h in (host, host + ".127.0.0.1.nip.io", host + ".test"))


SEED = [
    instance("www", "host:web_1:80", ["hello"], "172.18.0.5"),
    instance("www", "host:web_2:80", ["hello"], "172.18.0.6"),
    instance("www", "host:web2_1:80", ["world.dev", "server_aliases=hello.home"], "172.18.0.7"),
    instance("www_hello", "host:hello_1:80", [], "172.18.0.8"),
    instance("consul-admin_infra", "host:consul:8500", [], "172.18.0.2", 8500),
    instance("proxy-admin_infra", "host:proxy:1936", [], "172.18.0.3", 1936),
    instance("serviceA.prod", "host:a_1:80", ["server_alias=serviceA.prod.example.com"], "172.18.0.9"),
]


def test_seed_backends_and_hosts():
    table = build_routing_table(SEED, DOMAINS)
    backends = table["backends"]
    assert list(backends) == [
        "consul-admin_infra_backend",
        "hello_www_backend",
        "proxy-admin_infra_backend",
        "serviceA.prod_backend",
        "world.dev_www_backend",
        "www_hello_backend",
    ]
    assert backends["hello_www_backend"]["hosts"] == under_domains("www.hello")
    assert backends["hello_www_backend"]["routing_tag"] == "hello"
    assert [s["address"] for s in backends["hello_www_backend"]["servers"]] == ["172.18.0.5", "172.18.0.6"]
    assert backends["world.dev_www_backend"]["hosts"] == under_domains("hello.home", "www.world.dev")
    assert backends["consul-admin_infra_backend"]["hosts"] == under_domains("consul-admin.infra")
    assert backends["consul-admin_infra_backend"]["routing_tag"] is None
    assert backends["proxy-admin_infra_backend"]["servers"][0]["port"] == 1936
    assert backends["serviceA.prod_backend"]["hosts"] == under_domains("servicea.prod", "servicea.prod.example.com")
    assert table["hosts"]["www.hello.127.0.0.1.nip.io"] == "hello_www_backend"
    assert table["hosts"]["hello.home.test"] == "world.dev_www_backend"
    assert list(table["hosts"]) == sorted(table["hosts"])


def test_seed_www_hello_conflict_goes_to_sorted_first_backend():
    # Service 'www' tagged 'hello' and service 'www_hello' both claim www.hello.
    table = build_routing_table(SEED, DOMAINS)
    assert table["hosts"]["www.hello"] == "hello_www_backend"
    assert table["backends"]["www_hello_backend"]["hosts"] == []
    assert table["backends"]["www_hello_backend"]["servers"]
    conflict = [w for w in table["warnings"] if "loses host" in w]
    assert len(conflict) == 1
    assert "'www_hello'" in conflict[0] and "'www'" in conflict[0] and "'www.hello'" in conflict[0]


def test_server_entry_shape():
    table = build_routing_table([instance("www", "host:web_1:80", ["hello", "weight=10"])], DOMAINS)
    (server,) = table["backends"]["hello_www_backend"]["servers"]
    assert server == {
        "name": server_name("host:web_1:80", "node1"),
        "id": "host:web_1:80",
        "address": "172.18.0.5",
        "port": 80,
        "weight": 10,
    }


def test_backend_entry_shape():
    tags = ["hello", "sticky_session", "balance=leastconn", "maxconn=100", "public_ipaddress=128.1.2.3"]
    table = build_routing_table([instance("www", "a", tags)], DOMAINS)
    backend = table["backends"]["hello_www_backend"]
    assert set(backend) == {"service", "routing_tag", "hosts", "options", "servers"}
    assert backend["options"] == {"balance": "leastconn", "maxconn": 100, "sticky_session": True}
    assert "weight" not in backend["servers"][0]
    assert table["warnings"] == []
    assert json.loads(json.dumps(table)) == table


def test_only_passing_instances_become_servers():
    table = build_routing_table(
        [instance("www", "a", ["hello"], passing=True), instance("www", "b", ["hello"], passing=False)], DOMAINS
    )
    assert [s["id"] for s in table["backends"]["hello_www_backend"]["servers"]] == ["a"]


@pytest.mark.parametrize("passing", [False, None, "true", 1])
def test_service_without_passing_instance_keeps_hosts_with_no_servers(passing):
    table = build_routing_table([instance("www", "a", ["hello"], passing=passing)], DOMAINS)
    backend = table["backends"]["hello_www_backend"]
    assert backend["servers"] == []
    assert backend["hosts"] == under_domains("www.hello")
    assert table["hosts"]["www.hello"] == "hello_www_backend"


def test_instance_with_two_routing_tags_joins_two_backends_with_its_aliases():
    table = build_routing_table([instance("www", "a", ["hello", "world", "server_alias=alias.example"])], [])
    assert table["backends"]["hello_www_backend"]["hosts"] == ["alias.example", "www.hello"]
    assert table["backends"]["world_www_backend"]["hosts"] == ["www.world"]
    assert table["hosts"]["alias.example"] == "hello_www_backend"
    assert any("'alias.example'" in w for w in table["warnings"])


def test_routing_tag_only_routes_instances_that_carry_it():
    table = build_routing_table([instance("www", "a", ["hello"]), instance("www", "b", ["world"])], [])
    assert [s["id"] for s in table["backends"]["hello_www_backend"]["servers"]] == ["a"]
    assert [s["id"] for s in table["backends"]["world_www_backend"]["servers"]] == ["b"]


def test_weight_is_per_server():
    table = build_routing_table(
        [instance("www", "a", ["hello", "weight=10"]), instance("www", "b", ["hello", "weight=0"])], []
    )
    weights = {s["id"]: s["weight"] for s in table["backends"]["hello_www_backend"]["servers"]}
    assert weights == {"a": 10, "b": 0}
    assert "weight" not in table["backends"]["hello_www_backend"]["options"]


def test_disagreeing_options_sorted_first_instance_wins():
    table = build_routing_table(
        [
            instance("www", "b", ["hello", "balance=leastconn", "maxconn=5"]),
            instance("www", "a", ["hello", "balance=source", "sticky_session"]),
        ],
        [],
    )
    assert table["backends"]["hello_www_backend"]["options"] == {
        "balance": "source",
        "maxconn": 5,
        "sticky_session": True,
    }
    assert len(table["warnings"]) == 1
    assert "service 'www'" in table["warnings"][0] and "balance" in table["warnings"][0]


def test_backend_name_collision_between_services():
    # 'www' tagged 'hello' and 'hello_www' untagged both name 'hello_www_backend'.
    table = build_routing_table([instance("www", "a", ["hello"]), instance("hello_www", "b", [])], [])
    backend = table["backends"]["hello_www_backend"]
    assert backend["service"] == "hello_www"
    assert [s["id"] for s in backend["servers"]] == ["b"]
    assert table["hosts"] == {"hello.www": "hello_www_backend"}
    assert any("already belongs to service 'hello_www'" in w and "'www'" in w for w in table["warnings"])


def test_host_conflict_between_aliases_of_two_services():
    table = build_routing_table(
        [
            instance("zeta", "z", ["server_alias=shared.example"]),
            instance("alpha", "a", ["server_alias=shared.example"]),
        ],
        [],
    )
    assert table["hosts"]["shared.example"] == "alpha_backend"
    assert table["backends"]["zeta_backend"]["hosts"] == ["zeta"]
    (warning,) = table["warnings"]
    assert "'alpha'" in warning and "'zeta'" in warning


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (instance("bad name", "x"), "service name"),
        (instance("www\n", "x"), "service name"),
        (instance("_www", "x"), "service name"),
        (instance(None, "x"), "service name"),
        (instance("www", ""), "id"),
        (instance("www", None), "id"),
        (instance("www", "x" * 2000), "id"),
        (instance("www", "x", port=0), "port"),
        (instance("www", "x", port=65536), "port"),
        (instance("www", "x", port=True), "port"),
        (instance("www", "x", port="80\n"), "port"),
        (instance("www", "x", port=None), "port"),
        (instance("www", "x", address=""), "address"),
        (instance("www", "x", address=None), "address"),
        (instance("www", "x", address="1.2.3.4\nlisten evil"), "address"),
        (instance("www", "x", address="evil host"), "address"),
        (instance("www", "x", address="fe80::1%eth0"), "address"),
        (instance("www", "x", address="1.2.3.4:80"), "address"),
        (instance("www", "x", address="[::1]"), "address"),
        (instance("www", "x", node=5), "node"),
        (dict(instance("www", "x"), tags="hello"), "tags"),
        ("not a dict", "mapping"),
        (None, "mapping"),
    ],
)
def test_bad_instance_is_dropped_and_others_survive(bad, reason):
    good = instance("ok", "good-1", ["hello"])
    table = build_routing_table([bad, good], DOMAINS)
    assert list(table["backends"]) == ["hello_ok_backend"]
    assert len(table["backends"]["hello_ok_backend"]["servers"]) == 1
    assert len(table["warnings"]) == 1
    assert reason in table["warnings"][0]
    assert "dropped" in table["warnings"][0]
    assert "\n" not in table["warnings"][0]


def test_bad_instance_warning_names_service_and_id():
    table = build_routing_table([instance("www", "host:web_1:80", port=0)], [])
    assert table["warnings"] == ["service 'www' instance 'host:web_1:80' dropped: port '0' is not an integer 1-65535"]


@pytest.mark.parametrize(
    ("address", "port"),
    [("172.18.0.5", 80), ("fd00::1", 8080), ("::1", 1), ("web.internal", 65535), ("10.0.0.1", "8080")],
)
def test_good_addresses_and_ports(address, port):
    table = build_routing_table([instance("www", "a", address=address, port=port)], [])
    (server,) = table["backends"]["www_backend"]["servers"]
    assert server["address"] == address
    assert server["port"] == int(port)


@pytest.mark.parametrize(
    ("value", "valid"),
    [("1.2.3.4", True), ("fd00::1", True), ("host.example", True), ("1.2.3.4 ", False), ("a b", False), (None, False)],
)
def test_valid_address(value, valid):
    assert valid_address(value) is valid


def test_bad_tags_reach_the_warnings_once_per_service():
    table = build_routing_table(
        [instance("www", "a", ["hello", "weight=abc"]), instance("www", "b", ["hello", "weight=abc"])], []
    )
    assert table["warnings"] == ["service 'www': tag 'weight=abc' dropped: weight must be an integer 0-256"]


def test_invalid_domain_is_dropped_with_warning():
    table = build_routing_table([instance("www", "a", ["hello"])], ["test", "bad domain", "x\ny"])
    assert table["backends"]["hello_www_backend"]["hosts"] == ["www.hello", "www.hello.test"]
    assert len([w for w in table["warnings"] if w.startswith("domain ")]) == 2


def test_domains_as_haproxy_domain_string():
    assert build_routing_table(SEED, "127.0.0.1.nip.io:test") == build_routing_table(SEED, DOMAINS)


def test_table_is_deterministic_whatever_the_input_order():
    expected = build_routing_table(SEED, DOMAINS)
    rng = random.Random(4)
    for _unused in range(5):
        shuffled = list(SEED)
        rng.shuffle(shuffled)
        assert json.dumps(build_routing_table(shuffled, DOMAINS)) == json.dumps(expected)


def test_empty_input():
    assert build_routing_table([], DOMAINS) == {"backends": {}, "hosts": {}, "warnings": []}


@pytest.mark.parametrize(
    "iid", ["host:web_1:80", "a" * 500, "héllo wörld", "x\ny;#'\"", "../../etc", "-", "web.1", "dup"]
)
def test_server_names_are_safe_and_stable(iid):
    name = server_name(iid, "node1")
    assert SERVER_NAME_RE.match(name)
    assert len(name) <= 57
    assert name == server_name(iid, "node1")


def test_server_name_depends_on_node_too():
    assert server_name("web:80", "node1") != server_name("web:80", "node2")


def test_same_id_on_two_nodes_gives_two_servers():
    table = build_routing_table(
        [instance("www", "web:80", node="n1"), instance("www", "web:80", node="n2", address="172.18.0.6")], []
    )
    assert len(table["backends"]["www_backend"]["servers"]) == 2
    assert table["warnings"] == []


def test_exact_duplicate_instance_is_dropped_with_warning():
    table = build_routing_table([instance("www", "web:80"), instance("www", "web:80")], [])
    assert len(table["backends"]["www_backend"]["servers"]) == 1
    assert len(table["warnings"]) == 1 and "duplicate" in table["warnings"][0]


def test_route_lines_show_host_backend_and_servers():
    table = build_routing_table(
        [
            {"service": "www", "id": "a", "node": "n", "address": "10.0.0.2", "port": 80, "tags": ["hello"],
             "passing": True},
            {"service": "api", "id": "b", "node": "n", "address": "fd00::5", "port": 8080, "tags": [],
             "passing": False},
        ],
        ["test"],
    )
    assert route_lines(table) == [
        "api -> api_backend -> (no passing server: 503)",
        "api.test -> api_backend -> (no passing server: 503)",
        "www.hello -> hello_www_backend -> 10.0.0.2:80",
        "www.hello.test -> hello_www_backend -> 10.0.0.2:80",
    ]


def test_consuls_own_rpc_service_is_never_routed():
    table = build_routing_table(
        [{"service": "consul", "id": "consul", "node": "n", "address": "10.0.0.9", "port": 8300, "tags": [],
          "passing": True}],
        ["test"],
    )
    assert table == {"backends": {}, "hosts": {}, "warnings": []}


@hypothesis.settings(max_examples=2000, deadline=None)
@hypothesis.given(hypothesis.strategies.text(alphabet="0123456789.:%a \n", max_size=20)
                  | hypothesis.strategies.ip_addresses().map(str))
def test_is_ip_literal_agrees_with_ipaddress(text):
    try:
        expected = "%" not in text and bool(ipaddress.ip_address(text))
    except ValueError:
        expected = False
    assert is_ip_literal(text) is expected
