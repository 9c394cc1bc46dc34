# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Reading the Consul catalog as the instances the routing rules take, in few requests.

Stdlib only, over a ConsulClient (_consul.py); used by the proxy agent and the modules.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Tuple

from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, path_segment

# (node, service ID) of one instance
_Key = Tuple[str, str]


def normalise_health_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One entry of /v1/health/service/<name> as the dict the routing rules take."""
    service = entry.get("Service") or {}
    node = entry.get("Node") or {}
    checks = entry.get("Checks") or []
    return {
        "service": service.get("Service", ""),
        "id": service.get("ID", ""),
        "node": node.get("Node", ""),
        # An empty service address means "the node's address" in Consul.
        "address": service.get("Address") or node.get("Address", ""),
        "port": service.get("Port", 0),
        "tags": list(service.get("Tags") or []),
        "meta": dict(service.get("Meta") or {}),
        "passing": all(check.get("Status") == "passing" for check in checks),
    }


def _checks_by_instance(checks: list[dict[str, Any]] | None) -> dict[_Key, list[dict[str, Any]]]:
    """{(node, service id): [checks]}; node-wide checks (empty ServiceID) under (node, "")."""
    found: dict[_Key, list[dict[str, Any]]] = {}
    for check in checks or []:
        found.setdefault((check.get("Node", ""), check.get("ServiceID") or ""), []).append(check)
    return found


def _own_check_ids(entries: list[dict[str, Any]] | None) -> dict[_Key, tuple[int, frozenset[str]]]:
    """{(node, service id): (ModifyIndex, frozenset of the service's own check IDs)} of health entries."""
    found: dict[_Key, tuple[int, frozenset[str]]] = {}
    for entry in entries or []:
        service, node = entry.get("Service") or {}, (entry.get("Node") or {}).get("Node", "")
        own = frozenset(check.get("CheckID", "") for check in entry.get("Checks") or []
                        if check.get("ServiceID") == service.get("ID"))
        found[(node, service.get("ID", ""))] = (service.get("ModifyIndex") or 0, own)
    return found


class CatalogListing(NamedTuple):
    """What read_instances() read of the catalog besides the checks."""

    nodes: list[dict[str, Any]]  # /v1/catalog/nodes
    nodes_index: int | None  # its X-Consul-Index
    services: dict[str, list[dict[str, Any]]]  # node name -> its services (/v1/catalog/node-services/<node>)


def fetch_instances(
    client: ConsulClient,
    checks: tuple[list[dict[str, Any]], int | None] | None = None,
    known: dict[_Key, tuple[int, frozenset[str]]] | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Every instance of every service, normalised for the routing rules, and the catalog index.

    Returns ``(instances, index)``: the instances sorted by service, node and id, and the
    X-Consul-Index of ``/v1/catalog/nodes``. Costs 2 + (number of nodes) requests, 1 + nodes
    when ``checks`` is given: every node, every check at once, and each node's services.
    ``/v1/health/service/<name>`` per service would cost one request per service on every change
    (1,000 services: 1,000 requests).

    The checks are read before the services, so a service registered in between would come
    without its checks and look passing. Such a service has a ModifyIndex above the checks'
    index; each of those services is read again whole from ``/v1/health/service/<name>`` (one
    request per service name, only when that happens).

    ``checks``: a ``(value, index)`` answer of ``/v1/health/state/any`` the caller already holds
    (a watch of it), which saves reading every check again. Services modified since it are
    re-read as above; a check that changed status since it is the watch's to report.

    ``known``: a dict the caller keeps between calls. Consul moves a service's ModifyIndex, but
    not the checks' index, when the service changes and its checks do not (or it has none), so
    such a service would be re-read on every call until some check changes. The dict remembers
    ``(node, id) -> (ModifyIndex, own check IDs)`` of every service re-read; one is taken from
    the listing again while its ModifyIndex is the same and the checks hold all those check IDs.
    """
    instances, listing = read_instances(client, checks, known)
    return instances, listing.nodes_index


def read_instances(
    client: ConsulClient,
    checks: tuple[list[dict[str, Any]], int | None] | None = None,
    known: dict[_Key, tuple[int, frozenset[str]]] | None = None,
    previous: CatalogListing | None = None,
    nodes: tuple[list[dict[str, Any]], int | None] | None = None,
) -> tuple[list[dict[str, Any]], CatalogListing]:
    """fetch_instances(), and the CatalogListing it read: ``(instances, listing)``.

    ``nodes``: a ``(value, index)`` answer of ``/v1/catalog/nodes`` the caller already holds (a
    watch of it), which saves that request. Registering or removing a service leaves that
    index where it is (it is the nodes table's; checked on Consul 1.8.7), so such a watch wakes
    only when a node comes, goes or changes. A node the held answer does not list yet is read
    at the next call after the watch saw it.

    ``previous``: a listing of an earlier call that the caller knows to hold every service as
    it still is (no catalog change since it was read, and the same checks exist, only their
    statuses may differ). Its services are taken again when ``/v1/catalog/nodes`` answers the
    same nodes at the same index (a node's address is the address of its services that have
    none): a change of check statuses then costs one request (none with ``nodes``), not 1 + nodes.
    """
    listed_nodes, index = nodes if nodes is not None else client.request("GET", "/v1/catalog/nodes")
    nodes_now: list[dict[str, Any]] = listed_nodes or []
    all_checks, checks_index = checks if checks is not None else client.request("GET", "/v1/health/state/any")
    if previous is not None and index is not None and index == previous.nodes_index and nodes_now == previous.nodes:
        listing = previous
    else:
        listing = CatalogListing(nodes_now, index, {})
        for node in nodes_now:
            name = node.get("Node", "")
            answer, _unused = client.request("GET", "/v1/catalog/node-services/" + path_segment(name))
            listing.services[name] = (answer or {}).get("Services") or []
    by_instance = _checks_by_instance(all_checks)
    instances, reread, listed = [], set(), set()
    for node in listing.nodes:
        name = node.get("Node", "")
        for service in listing.services.get(name, []):
            key = (name, service.get("ID", ""))
            listed.add(key)
            service_checks = by_instance.get(key, [])
            modified = service.get("ModifyIndex") or 0
            if checks_index is not None and modified > checks_index and not _still_known(
                    (known or {}).get(key), modified, service_checks):
                reread.add(service.get("Service", ""))
                continue
            entry = {"Node": node, "Service": service, "Checks": by_instance.get((name, ""), []) + service_checks}
            instances.append(normalise_health_entry(entry))
    if reread:
        instances = [instance for instance in instances if instance["service"] not in reread]
        for name in sorted(reread):
            entries, _unused = client.health_service(name)
            instances.extend(normalise_health_entry(entry) for entry in entries or [])
            if known is not None:
                known.update(_own_check_ids(entries))
    if known is not None:
        for gone in set(known) - listed:
            del known[gone]
    instances.sort(key=lambda instance: (instance["service"], instance["node"], instance["id"]))
    return instances, listing


def _still_known(
    remembered: tuple[int, frozenset[str]] | None, modified: int, service_checks: list[dict[str, Any]]
) -> bool:
    """True when a service re-read before is unchanged and the checks hold every check it had."""
    if remembered is None or remembered[0] != modified:
        return False
    return remembered[1] <= {check.get("CheckID", "") for check in service_checks}
