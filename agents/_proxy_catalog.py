# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One snapshot of every service instance in Consul, in 2 + (number of nodes) requests.

``/v1/health/service/<name>`` per service would cost one request per service on every change
(1,000 services: 1,000 requests); the catalog per node plus every check at once gives the
same entries.
"""

from __future__ import annotations

import urllib.parse

from ansible_collections.autoproxy.stack.plugins.module_utils._consul import normalise_health_entry


def _checks_by_instance(checks):
    """{(node, service id): [checks]}; node-wide checks (empty ServiceID) under (node, "")."""
    found = {}
    for check in checks or []:
        found.setdefault((check.get("Node", ""), check.get("ServiceID") or ""), []).append(check)
    return found


def fetch_instances(client):
    """Every instance of every service, normalised for the routing rules, and the catalog index."""
    nodes, index = client.request("GET", "/v1/catalog/nodes")
    checks, _unused = client.request("GET", "/v1/health/state/any")
    by_instance = _checks_by_instance(checks)
    instances = []
    for node in sorted(nodes or [], key=lambda item: item.get("Node", "")):
        name = node.get("Node", "")
        listing, _unused = client.request("GET", "/v1/catalog/node-services/" + urllib.parse.quote(name, safe=""))
        for service in (listing or {}).get("Services") or []:
            node_checks = by_instance.get((name, ""), [])
            service_checks = by_instance.get((name, service.get("ID", "")), [])
            entry = {"Node": node, "Service": service, "Checks": node_checks + service_checks}
            instances.append(normalise_health_entry(entry))
    return instances, index
