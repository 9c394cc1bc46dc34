# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""RoutingTableBuilder keeps what it parsed between builds and still gives build_routing_table()'s table."""

from __future__ import annotations

import random
from typing import Any

from ansible_collections.autoproxy.stack.plugins.module_utils._routing import RoutingTableBuilder, build_routing_table

TAG_SETS = [[], ["hello"], ["hello", "weight=3"], ["world.dev", "server_aliases=a.home,b.home"], ["sticky_session"],
            ["balance=leastconn", "maxconn=9"], ["bad tag", "weight=999"], "not a list"]
# Equal as keys but not as values: a cached check of one must never answer for another.
PORTS = [1, True, 1.0, "1", 8080]


def catalog(rng: random.Random) -> list[dict[str, Any]]:
    return [{"service": rng.choice(["www", "api", "shop", "www_hello", "bad name"]), "id": f"i{index}",
             "address": f"10.0.0.{index + 1}", "port": rng.choice(PORTS), "tags": rng.choice(TAG_SETS),
             "node": rng.choice(["n1", None, ""]), "passing": rng.random() > 0.2}
            for index in range(rng.randint(0, 12))]


def test_every_build_equals_a_fresh_one_through_a_sequence_of_catalogs() -> None:
    rng = random.Random(10)
    builder = RoutingTableBuilder()
    for step in range(200):
        instances = catalog(rng)
        domains = rng.choice([["test"], ["test", "example.com"], "test:local"])
        assert builder.build(instances, domains) == build_routing_table(instances, domains), f"step {step}"


def test_tags_no_catalog_holds_any_more_are_forgotten() -> None:
    builder = RoutingTableBuilder()
    builder.build([{"service": "www", "id": "a", "address": "10.0.0.1", "port": 80, "tags": ["hello"]}], ["test"])
    builder.build([{"service": "api", "id": "b", "address": "10.0.0.2", "port": 80, "tags": ["v2"]}], ["test"])
    assert list(builder._shapes) == [("api", ("v2",))]


def test_a_port_of_another_type_is_checked_again() -> None:
    builder = RoutingTableBuilder()
    good = {"service": "www", "id": "a", "address": "10.0.0.1", "port": 1, "tags": [], "passing": True}
    assert builder.build([good], ["test"])["backends"]["www_backend"]["servers"]
    table = builder.build([dict(good, port=True)], ["test"])
    assert table["backends"] == {}
    assert any("port 'True'" in warning for warning in table["warnings"])


def test_instances_no_catalog_holds_any_more_are_forgotten() -> None:
    builder = RoutingTableBuilder()
    builder.build([{"service": "www", "id": f"i{index}", "address": "10.0.0.1", "port": 80 + index, "tags": []}
                   for index in range(50)], ["test"])
    builder.build([{"service": "www", "id": "last", "address": "10.0.0.1", "port": 80, "tags": []}], ["test"])
    assert [key[1] for key in builder._checked] == ["last"]
