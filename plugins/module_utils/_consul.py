# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small Consul HTTP API client shared by the modules and both agents.

Standard library only, so the agent image needs no Python package beyond Debian's
python3 and the modules run on any target. Reading the whole catalog for the routing rules is
_consul_catalog.py's job; the Ansible side of the connection options is _consul_module.py's.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8500"


class ConsulError(Exception):
    """A Consul request failed; the message says which request and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def path_segment(segment: str) -> str:
    """A name or ID as one path segment of a Consul URL."""
    return urllib.parse.quote(segment, safe="")


def filter_string(value: object) -> str:
    """A value quoted for a Consul filter expression (``?filter=Meta.x == "..."``)."""
    return json.dumps(str(value))


class ConsulClient:
    """Consul's HTTP API at ``url``; every method raises ConsulError naming the request that failed."""

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = 10.0,
                 ca_path: str | None = None, validate_certs: bool = True, client_cert: str | None = None,
                 client_key: str | None = None) -> None:
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

    def request(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None,
                timeout: float | None = None) -> tuple[Any, int | None]:
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

    def _blocking(self, path: str, index: int | None, wait: float,
                  params: dict[str, Any] | None = None) -> tuple[Any, int | None]:
        query = dict(params or {})
        if index:
            # Consul answers at the latest after `wait` plus up to wait/16 of jitter.
            query.update(index=index, wait=f"{wait}s")
        return self.request("GET", path, params=query, timeout=wait + wait / 16 + 5 if index else None)

    # ---- agent
    def leader(self) -> str:
        value, _unused = self.request("GET", "/v1/status/leader")
        return value or ""

    def agent_services(self) -> dict[str, Any]:
        value, _unused = self.request("GET", "/v1/agent/services")
        return value or {}

    def agent_services_where(self, expression: str) -> dict[str, Any]:
        """Only the agent's services that match a Consul filter expression (see filter_string())."""
        value, _unused = self.request("GET", "/v1/agent/services", params={"filter": expression})
        return value or {}

    def agent_service(self, service_id: str) -> dict[str, Any] | None:
        """The agent's full registration of one service, or None when it has none."""
        try:
            value, _unused = self.request("GET", "/v1/agent/service/" + path_segment(service_id))
        except ConsulError as exc:
            if exc.status == 404:
                return None
            raise
        return value

    def agent_checks(self) -> dict[str, Any]:
        """Every check the agent holds, keyed by check ID."""
        return self.request("GET", "/v1/agent/checks")[0] or {}

    def register_service(self, registration: dict[str, Any], replace_existing_checks: bool = False) -> None:
        """Register a service (the body of ``PUT /v1/agent/service/register``); with
        ``replace_existing_checks`` the agent drops the service's checks that are not in the body."""
        params = {"replace-existing-checks": "true"} if replace_existing_checks else None
        self.request("PUT", "/v1/agent/service/register", params=params, body=registration)

    def deregister_service(self, service_id: str) -> None:
        self.request("PUT", "/v1/agent/service/deregister/" + path_segment(service_id))

    def update_ttl_check(self, check_id: str, status: str, output: str = "") -> None:
        """Set a TTL check's status (passing, warning or critical) and output."""
        self.request("PUT", "/v1/agent/check/update/" + path_segment(check_id),
                     body={"Status": status, "Output": output})

    # ---- catalog and health (blocking queries when given the index of the previous answer)
    def catalog_services(self, index: int | None = None, wait: float = 60) -> tuple[Any, int | None]:
        return self._blocking("/v1/catalog/services", index, wait)

    def health_state(self, index: int | None = None, wait: float = 60) -> tuple[Any, int | None]:
        return self._blocking("/v1/health/state/any", index, wait)

    def health_service(self, name: str, index: int | None = None, wait: float = 60) -> tuple[Any, int | None]:
        return self._blocking("/v1/health/service/" + path_segment(name), index, wait)
