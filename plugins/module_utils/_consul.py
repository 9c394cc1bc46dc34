# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small Consul HTTP API client shared by the modules and both agents.

Standard library only, so the agent image needs no Python package beyond Debian's
python3 and the modules run on any target.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8500"


class ConsulError(Exception):
    """A Consul request failed; the message says which request and why."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class ConsulClient:
    def __init__(self, url=DEFAULT_URL, token=None, timeout=10.0, ca_path=None, validate_certs=True,
                 client_cert=None, client_key=None):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        handlers = []
        if self.url.startswith("https://"):
            context = ssl.create_default_context(cafile=ca_path)
            if not validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if client_cert:
                context.load_cert_chain(client_cert, client_key)
            handlers.append(urllib.request.HTTPSHandler(context=context))
        # Plain urllib (not Ansible's open_url): the agents run this without Ansible installed.
        self._opener = urllib.request.build_opener(*handlers)

    def request(self, method, path, params=None, body=None, timeout=None):
        """Return ``(decoded JSON or None, X-Consul-Index or None)``."""
        query = ""
        if params:
            query = "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path + query, data=data, method=method)
        if self.token:
            req.add_header("X-Consul-Token", self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(req, timeout=timeout or self.timeout) as resp:
                raw = resp.read()
                index = resp.headers.get("X-Consul-Index")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace").strip()
            raise ConsulError(f"Consul {method} {path} failed: HTTP {exc.code} {detail}", exc.code) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConsulError(f"Consul {method} {path} failed: cannot reach {self.url}: {reason}") from exc
        try:
            decoded = json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            raise ConsulError(f"Consul {method} {path} answered something that is not JSON") from exc
        return decoded, (int(index) if index and index.isdigit() else None)

    def _blocking(self, path, index, wait, params=None):
        query = dict(params or {})
        if index:
            # Consul answers at the latest after `wait` plus up to wait/16 of jitter.
            query.update(index=index, wait=f"{wait}s")
        return self.request("GET", path, params=query, timeout=wait + wait / 16 + 5 if index else None)

    # ---- agent
    def leader(self):
        value, _unused = self.request("GET", "/v1/status/leader")
        return value or ""

    def agent_services(self):
        value, _unused = self.request("GET", "/v1/agent/services")
        return value or {}

    def agent_service(self, service_id):
        """The agent's full registration of one service, or None when it has none."""
        try:
            value, _unused = self.request("GET", "/v1/agent/service/" + urllib.parse.quote(service_id, safe=""))
        except ConsulError as exc:
            if exc.status == 404:
                return None
            raise
        return value

    def register_service(self, registration):
        self.request("PUT", "/v1/agent/service/register", body=registration)

    def deregister_service(self, service_id):
        self.request("PUT", "/v1/agent/service/deregister/" + urllib.parse.quote(service_id, safe=""))

    # ---- catalog and health
    def catalog_services(self, index=None, wait=60):
        return self._blocking("/v1/catalog/services", index, wait)

    def health_state(self, index=None, wait=60):
        return self._blocking("/v1/health/state/any", index, wait)

    def health_service(self, name, index=None, wait=60):
        return self._blocking("/v1/health/service/" + urllib.parse.quote(name, safe=""), index, wait)


def normalise_health_entry(entry):
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


def _checks_by_instance(checks):
    """{(node, service id): [checks]}; node-wide checks (empty ServiceID) under (node, "")."""
    found = {}
    for check in checks or []:
        found.setdefault((check.get("Node", ""), check.get("ServiceID") or ""), []).append(check)
    return found


def _own_check_ids(entries):
    """{(node, service id): (ModifyIndex, frozenset of the service's own check IDs)} of health entries."""
    found = {}
    for entry in entries or []:
        service, node = entry.get("Service") or {}, (entry.get("Node") or {}).get("Node", "")
        own = frozenset(check.get("CheckID", "") for check in entry.get("Checks") or []
                        if check.get("ServiceID") == service.get("ID"))
        found[(node, service.get("ID", ""))] = (service.get("ModifyIndex") or 0, own)
    return found


def fetch_instances(client, checks=None, known=None):
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
    nodes, index = client.request("GET", "/v1/catalog/nodes")
    checks, checks_index = checks if checks is not None else client.request("GET", "/v1/health/state/any")
    by_instance = _checks_by_instance(checks)
    instances, reread, listed = [], set(), set()
    for node in nodes or []:
        name = node.get("Node", "")
        listing, _unused = client.request("GET", "/v1/catalog/node-services/" + urllib.parse.quote(name, safe=""))
        for service in (listing or {}).get("Services") or []:
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
    for gone in set(known or ()) - listed:
        del known[gone]
    instances.sort(key=lambda instance: (instance["service"], instance["node"], instance["id"]))
    return instances, index


def _still_known(remembered, modified, service_checks):
    """True when a service re-read before is unchanged and the checks hold every check it had."""
    if remembered is None or remembered[0] != modified:
        return False
    return remembered[1] <= {check.get("CheckID", "") for check in service_checks}


# Ansible argument spec of the connection options (documented in doc_fragments/consul.py).
CONNECTION_ARGSPEC = {
    "url": {"type": "str", "default": DEFAULT_URL},
    "token": {"type": "str", "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "timeout": {"type": "float", "default": 10.0},
}


# ---- used by the registrator agent (appended; the client above is shared)


def agent_services_where(client, expression):
    """``GET /v1/agent/services?filter=...``: only the services matching a Consul filter expression."""
    value, _unused = client.request("GET", "/v1/agent/services", params={"filter": expression})
    return value or {}


def update_ttl_check(client, check_id, status, output=""):
    """Set a TTL check's status (passing, warning or critical) and output."""
    client.request("PUT", "/v1/agent/check/update/" + urllib.parse.quote(check_id, safe=""),
                   body={"Status": status, "Output": output})


def filter_string(value):
    """A value quoted for a Consul filter expression."""
    return json.dumps(str(value))


# ---- added for the consul_service module (issue 5)
def agent_checks(client):
    """Every check the agent holds, keyed by check id (/v1/agent/checks)."""
    return client.request("GET", "/v1/agent/checks")[0] or {}


def register_service_checks(client, registration, replace_existing_checks):
    """Register a service; with ``replace_existing_checks`` the agent drops its checks not in ``Checks``."""
    params = {"replace-existing-checks": "true"} if replace_existing_checks else None
    client.request("PUT", "/v1/agent/service/register", params=params, body=registration)
