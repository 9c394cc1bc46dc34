# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Local-first weights (docs/RULES.md §18): the rule, and both ways it reaches HAProxy."""

from __future__ import annotations

import re

import pytest

from ansible_collections.autoproxy.stack.agents.proxy import local_weights_from_args, main, parse_args
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_runtime import (
    AddServer,
    RunningState,
    SetOption,
    plan_changes,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._local_weights import (
    DEFAULT_WEIGHT,
    MAX_WEIGHT,
    LocalWeights,
    effective_weight,
    local_weights,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table

HERE, THERE, ELSEWHERE = "10.0.0.1", "10.0.0.2", "10.0.0.3"


def instance(iid, address, tags=()):
    return {"service": "www", "id": iid, "node": address, "address": address, "port": 8080,
            "tags": ["hello", *tags], "passing": True}


def weights(table, backend="hello_www_backend"):
    return {server["address"]: server.get("weight") for server in table["backends"][backend]["servers"]}


def test_haproxy_bounds_come_from_the_weight_option():
    assert (DEFAULT_WEIGHT, MAX_WEIGHT) == (1, 256)


@pytest.mark.parametrize(("tag", "factor", "expected"), [
    (None, 4, 4),  # no tag: HAProxy's default 1, times the factor
    (3, 4, 12),
    (0, 4, 0),  # weight=0 takes a server out; being local does not put it back
    (100, 4, 256),  # capped at HAProxy's highest weight
    (256, 256, 256),
    (3, 1, 3),
    (3, 0, 3),  # 0: off
    (None, 0, 1),
])
def test_effective_weight(tag, factor, expected):
    assert effective_weight(tag, factor) == expected


def test_only_servers_at_a_local_address_change():
    table = build_routing_table([instance("a", HERE), instance("b", THERE, ["weight=2"]),
                                 instance("c", ELSEWHERE)], ["test"])
    weighted = local_weights(table, LocalWeights.checked([HERE], 10))
    assert weights(weighted) == {HERE: 10, THERE: 2, ELSEWHERE: None}
    assert weights(table) == {HERE: None, THERE: 2, ELSEWHERE: None}, "the table given is not changed"
    both = local_weights(table, LocalWeights.checked([HERE, THERE], 10))
    assert weights(both) == {HERE: 10, THERE: 20, ELSEWHERE: None}


def test_backends_without_a_local_server_are_left_as_they_are():
    table = build_routing_table([instance("a", HERE), {**instance("x", THERE), "service": "api", "tags": []}], ["test"])
    weighted = local_weights(table, LocalWeights.checked([HERE], 10))
    assert weighted["backends"]["api_backend"] is table["backends"]["api_backend"]
    assert weighted["hosts"] == table["hosts"]


@pytest.mark.parametrize("local", [LocalWeights.checked([HERE], 0), LocalWeights.checked([HERE], 1),
                                   LocalWeights.checked([], 10)])
def test_off_changes_nothing(local):
    table = build_routing_table([instance("a", HERE, ["weight=3"]), instance("b", THERE)], ["test"])
    assert not local.active
    assert local_weights(table, local) == table


def test_addresses_compare_as_addresses():
    local = LocalWeights.checked(["2001:DB8:0::1", "Edge1.Example"], 5)
    assert local.is_local("2001:db8::1")
    assert local.is_local("edge1.example")
    assert not local.is_local("2001:db8::2")
    assert not local.is_local("10.0.0.1")


@pytest.mark.parametrize(("addresses", "weight", "message"), [
    (["10.0.0.1", "10.0.0.1;x"], 4, r"local address '10\.0\.0\.1;x'"),
    (["fe80::1%eth0"], 4, r"local address 'fe80::1%eth0'"),
    ([""], 4, r"local address ''"),
    (["10.0.0.1"], 257, r"local weight must be an integer 0-256, got '257'"),
    (["10.0.0.1"], -1, r"local weight must be an integer 0-256"),
    (["10.0.0.1"], True, r"local weight must be an integer 0-256"),
])
def test_bad_options_are_named(addresses, weight, message):
    with pytest.raises(ValueError, match=message):
        LocalWeights.checked(addresses, weight)


def test_agent_options_repeatable_comma_lists_and_environment(monkeypatch):
    monkeypatch.delenv("AUTOPROXY_LOCAL_ADDRESSES", raising=False)
    assert local_weights_from_args(parse_args([])) == LocalWeights(frozenset(), 0)
    args = parse_args(["--local-address=10.0.0.1, 10.0.0.2", "--local-address=::1", "--local-weight=8"])
    assert local_weights_from_args(args) == LocalWeights(frozenset({"10.0.0.1", "10.0.0.2", "::1"}), 8)
    monkeypatch.setenv("AUTOPROXY_LOCAL_ADDRESSES", "10.0.0.9,10.0.0.8")
    assert local_weights_from_args(parse_args(["--local-weight=2"])).addresses == {"10.0.0.9", "10.0.0.8"}
    assert local_weights_from_args(parse_args(["--local-address=10.0.0.1"])).addresses == {"10.0.0.1"}, \
        "the option wins over the environment"


def test_the_agent_refuses_to_start_with_a_bad_local_option(caplog):
    assert main(["--local-address=10.0.0.1,not an address", "--local-weight=4"]) == 2
    assert "local address 'not an address'" in caplog.text
    assert main(["--local-weight=300"]) == 2
    assert "local weight must be an integer 0-256, got '300'" in caplog.text


# ---- both paths to HAProxy carry the same weights

def test_the_rendered_config_carries_the_local_weight():
    table = local_weights(build_routing_table([instance("a", HERE), instance("b", THERE)], ["test"]),
                          LocalWeights.checked([HERE], 10))
    config = render_haproxy_config(table, HaproxySettings())["haproxy.cfg"]
    assert re.search(rf"server a-\w+ {re.escape(HERE)}:8080 check weight 10\n", config)
    assert re.search(rf"server b-\w+ {re.escape(THERE)}:8080 check\n", config)


def test_the_runtime_api_sets_the_local_weight():
    local = LocalWeights.checked([HERE], 10)
    settings = HaproxySettings(spare_backends=1)
    before = local_weights(build_routing_table([instance("a", HERE), instance("b", THERE)], ["test"]), local)
    after = local_weights(build_routing_table([instance("a", HERE, ["weight=2"]), instance("b", THERE)], ["test"]),
                          local)
    plan = plan_changes(RunningState.from_table(before, settings), after)
    (name,) = [server["name"] for server in after["backends"]["hello_www_backend"]["servers"]
               if server["address"] == HERE]
    assert plan.reload_reason is None
    assert plan.steps == [SetOption("hello_www_backend", name, "weight", 20)]
    added = plan_changes(RunningState.from_table(build_routing_table([], ["test"]), settings), before)
    (add,) = [step for step in added.steps if isinstance(step, AddServer) and step.server["address"] == HERE]
    assert add.server["weight"] == 10, "add server carries the local weight"
