# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import urllib.parse

from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient
from ansible_collections.autoproxy.stack.plugins.module_utils._consul_catalog import (
    CatalogListing,
    fetch_instances,
    normalise_health_entry,
    read_instances,
)

NODES = [{"Node": "n2", "Address": "10.0.0.2"}, {"Node": "n1", "Address": "10.0.0.1"}]
SERVICES = {
    "n1": [
        {"ID": "consul", "Service": "consul", "Tags": [], "Address": "", "Port": 8300, "Meta": {}, "ModifyIndex": 5},
        {"ID": "web-1", "Service": "www", "Tags": ["hello"], "Address": "172.18.0.5", "Port": 80,
         "Meta": {"autoproxy_container": "web_1"}, "ModifyIndex": 20},
    ],
    "n2": [
        {"ID": "web-2", "Service": "www", "Tags": ["hello", "x"], "Address": "", "Port": 8080, "Meta": None,
         "ModifyIndex": 21},
        {"ID": "api-1", "Service": "api", "Tags": None, "Address": "172.18.0.9", "Port": 81, "ModifyIndex": 22},
    ],
}
CHECKS = [
    {"Node": "n1", "CheckID": "serfHealth", "ServiceID": "", "Status": "passing"},
    {"Node": "n2", "CheckID": "serfHealth", "ServiceID": "", "Status": "passing"},
    {"Node": "n1", "CheckID": "service:web-1", "ServiceID": "web-1", "Status": "passing"},
    {"Node": "n2", "CheckID": "service:web-2", "ServiceID": "web-2", "Status": "critical"},
    {"Node": "n2", "CheckID": "service:api-1", "ServiceID": "api-1", "Status": "passing"},
]


class FakeConsul(ConsulClient):
    """Answers the catalog and health endpoints from the dicts above, counting requests."""

    def __init__(self, nodes=None, services=None, checks=None, checks_index=30, checks_read=None):
        super().__init__("http://consul.invalid:8500")
        self.nodes = NODES if nodes is None else nodes
        self.services = SERVICES if services is None else services
        self.checks = CHECKS if checks is None else checks
        self.checks_index = checks_index
        self.checks_read = self.checks if checks_read is None else checks_read  # what /v1/health/state/any answers
        self.paths = []

    def _node(self, name):
        return next(node for node in self.nodes if node["Node"] == name)

    def health_entries(self, name):
        """What /v1/health/service/<name> answers: each instance with its node's and its own checks."""
        return [{"Node": self._node(node), "Service": service,
                 "Checks": [check for check in self.checks
                            if check["Node"] == node and check["ServiceID"] in ("", service["ID"])]}
                for node in sorted(self.services) for service in self.services[node] if service["Service"] == name]

    def request(self, method, path, params=None, body=None, timeout=None, decode=True):
        assert method == "GET"
        self.paths.append(path)
        if path == "/v1/catalog/nodes":
            return self.nodes, 42
        if path == "/v1/health/state/any":
            return self.checks_read, self.checks_index
        if path.startswith("/v1/catalog/node-services/"):
            name = urllib.parse.unquote(path.rsplit("/", 1)[1])
            return {"Node": self._node(name), "Services": self.services.get(name, [])}, 40
        if path.startswith("/v1/health/service/"):
            return self.health_entries(urllib.parse.unquote(path.rsplit("/", 1)[1])), 41
        raise AssertionError(f"unexpected request {path}")


def per_service(consul):
    """The instances as /v1/health/service/<name> per service gives them."""
    names = {service["Service"] for services in consul.services.values() for service in services}
    return sorted((normalise_health_entry(entry) for name in names for entry in consul.health_entries(name)),
                  key=lambda instance: (instance["service"], instance["node"], instance["id"]))


def test_fetch_instances_gives_what_health_service_per_service_gives():
    consul = FakeConsul()
    instances, index = fetch_instances(consul)
    assert instances == per_service(consul)
    assert index == 42, "the index is the catalog's"
    assert len(consul.paths) == 2 + len(NODES)


def test_fetch_instances_normalises_each_instance():
    instances, _unused = fetch_instances(FakeConsul())
    assert [(i["service"], i["node"], i["id"]) for i in instances] == [
        ("api", "n2", "api-1"), ("consul", "n1", "consul"), ("www", "n1", "web-1"), ("www", "n2", "web-2")]
    web_2 = instances[-1]
    assert web_2 == {"service": "www", "id": "web-2", "node": "n2", "address": "10.0.0.2", "port": 8080,
                     "tags": ["hello", "x"], "meta": {}, "passing": False}
    assert instances[2]["passing"] is True and instances[2]["meta"] == {"autoproxy_container": "web_1"}


def test_a_service_registered_after_the_checks_were_read_is_read_again_whole():
    # web-3 and its critical check were registered at index 31, after /v1/health/state/any answered (index 30).
    web_3 = {"ID": "web-3", "Service": "www", "Tags": ["hello"], "Address": "172.18.0.7", "Port": 80,
             "ModifyIndex": 31}
    web_3_check = {"Node": "n1", "CheckID": "service:web-3", "ServiceID": "web-3", "Status": "critical"}
    consul = FakeConsul(services=dict(SERVICES, n1=[*SERVICES["n1"], web_3]), checks=[*CHECKS, web_3_check],
                        checks_read=CHECKS)
    instances, _unused = fetch_instances(consul)
    assert instances == per_service(consul)
    assert next(instance for instance in instances if instance["id"] == "web-3")["passing"] is False
    assert consul.paths.count("/v1/health/service/www") == 1
    assert len(consul.paths) == 2 + len(NODES) + 1


def test_without_the_race_no_service_is_read_again():
    consul = FakeConsul(checks_index=22)  # every service was modified at or before the checks read
    fetch_instances(consul)
    assert not [path for path in consul.paths if path.startswith("/v1/health/service/")]


def test_an_empty_catalog_is_no_instances():
    consul = FakeConsul(nodes=[], services={}, checks=[])
    assert fetch_instances(consul) == ([], 42)


def test_checks_the_caller_holds_are_not_read_again():
    consul = FakeConsul()
    instances, _unused = fetch_instances(consul, checks=(CHECKS, 30))
    assert "/v1/health/state/any" not in consul.paths
    assert instances == per_service(consul)


def test_checks_the_caller_holds_that_are_older_than_a_service_cause_a_re_read():
    consul = FakeConsul()
    instances, _unused = fetch_instances(consul, checks=(CHECKS, 20))  # api-1 and web-2 changed since
    assert instances == per_service(consul)
    assert sorted(path for path in consul.paths if path.startswith("/v1/health/service/")) == [
        "/v1/health/service/api", "/v1/health/service/www"]


def test_a_service_without_checks_newer_than_every_check_is_read_again_only_once():
    # api-1 has no check and was registered (index 22) after the last check change (index 21).
    checks = [check for check in CHECKS if check["ServiceID"] != "api-1"]
    consul = FakeConsul(checks=checks, checks_index=21)
    known = {}
    first, _unused = fetch_instances(consul, known=known)
    assert consul.paths.count("/v1/health/service/api") == 1
    assert known[("n2", "api-1")] == (22, frozenset())
    consul.paths.clear()
    again, _unused = fetch_instances(consul, known=known)
    assert again == first == per_service(consul)
    assert consul.paths.count("/v1/health/service/api") == 0, "known to have no checks at this ModifyIndex"
    assert consul.paths.count("/v1/health/service/www") == 0, "web-1 (20) is older than the checks (21)"


def test_a_service_changed_without_its_checks_is_read_again_only_once():
    # A Meta change moves web-1's ModifyIndex (25) but not the checks' index (21): Consul leaves
    # an unchanged check alone.
    changed = dict(SERVICES, n1=[SERVICES["n1"][0], dict(SERVICES["n1"][1], ModifyIndex=25)])
    consul = FakeConsul(services=changed, checks_index=21)
    known = {}
    fetch_instances(consul, known=known)
    assert consul.paths.count("/v1/health/service/www") == 1
    assert known[("n1", "web-1")] == (25, frozenset({"service:web-1"}))
    consul.paths.clear()
    instances, _unused = fetch_instances(consul, known=known)
    assert consul.paths.count("/v1/health/service/www") == 0
    assert instances == per_service(consul)


def test_a_known_service_whose_check_is_missing_from_the_checks_is_read_again():
    consul = FakeConsul(checks_index=21)
    known = {("n1", "web-1"): (20, frozenset({"service:web-1"})), ("n2", "web-2"): (21, frozenset())}
    snapshot = [check for check in CHECKS if check["ServiceID"] != "web-1"]
    fetch_instances(consul, checks=(snapshot, 19), known=known)
    assert consul.paths.count("/v1/health/service/www") == 1, "web-1's check is not in the checks given"


def test_a_remembered_service_is_read_again_when_modified_and_forgotten_when_gone():
    checks = [check for check in CHECKS if check["ServiceID"] != "api-1"]
    known = {("n2", "api-1"): (22, frozenset()), ("n9", "gone"): (3, frozenset())}
    modified = dict(SERVICES, n2=[SERVICES["n2"][0], dict(SERVICES["n2"][1], ModifyIndex=25)])
    consul = FakeConsul(services=modified, checks=checks, checks_index=21)
    fetch_instances(consul, known=known)
    assert consul.paths.count("/v1/health/service/api") == 1
    assert known == {("n2", "api-1"): (25, frozenset())}


def test_a_listing_of_the_same_nodes_is_taken_again_with_the_new_check_statuses():
    consul = FakeConsul(checks_index=30)
    _unused, listing = read_instances(consul, checks=(CHECKS, 30))
    assert listing.nodes_index == 42 and set(listing.services) == {"n1", "n2"}
    flipped = [dict(check, Status="passing") if check["ServiceID"] == "web-2" else check for check in CHECKS]
    consul.checks = consul.checks_read = flipped
    consul.paths.clear()
    instances, again = read_instances(consul, checks=(flipped, 31), previous=listing)
    assert consul.paths == ["/v1/catalog/nodes"], "one request: the nodes, to see they did not change"
    assert again is listing
    assert instances == per_service(consul)
    assert next(instance for instance in instances if instance["id"] == "web-2")["passing"] is True


def test_a_listing_is_read_again_when_the_nodes_moved():
    consul = FakeConsul()
    fresh, _unused = read_instances(consul)
    stale_services = {"n1": [], "n2": []}
    for previous in (CatalogListing(NODES, 41, stale_services),  # the nodes' index moved since
                     CatalogListing(NODES[:1], 42, stale_services),  # a node joined
                     CatalogListing([dict(NODES[0], Address="10.0.0.9"), NODES[1]], 42, stale_services)):
        consul.paths.clear()
        instances, listing = read_instances(consul, previous=previous)
        assert listing is not previous and instances == fresh
        assert len(consul.paths) == 2 + len(NODES)


def test_nodes_the_caller_holds_are_not_read_again():
    consul = FakeConsul()
    instances, listing = read_instances(consul, checks=(CHECKS, 30), nodes=(NODES, 42))
    assert sorted(consul.paths) == ["/v1/catalog/node-services/n1", "/v1/catalog/node-services/n2"]
    assert instances == per_service(consul) and listing.nodes_index == 42
    consul.paths.clear()
    again, same = read_instances(consul, checks=(CHECKS, 31), nodes=(NODES, 42), previous=listing)
    assert consul.paths == [] and same is listing, "a change of check statuses alone: no request at all"
    assert again == instances


def test_a_node_the_held_nodes_answer_adds_is_read():
    consul = FakeConsul()
    _unused, listing = read_instances(consul, checks=(CHECKS, 30), nodes=(NODES[:1], 42))
    assert set(listing.services) == {NODES[0]["Node"]}, "what the held answer lists, nothing more"
    consul.paths.clear()
    instances, _unused = read_instances(consul, checks=(CHECKS, 30), nodes=(NODES, 43), previous=listing)
    assert sorted(consul.paths) == ["/v1/catalog/node-services/n1", "/v1/catalog/node-services/n2"]
    assert instances == per_service(consul)
