# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small Consul HTTP API client shared by the modules and both agents.

Standard library only, so the agent image needs no Python package beyond Debian's
python3 and the modules run on any target. Reading the whole catalog for the routing rules is
_consul_catalog.py's job; the Ansible side of the connection options is _consul_module.py's.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse
import weakref
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8500"
# Requests that may be sent again when a kept-alive connection turned out closed (RFC 9110 9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# What a connection the server closed or forgot while it was idle raises before any answer.
_NO_ANSWER = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, http.client.RemoteDisconnected)


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
    """Consul's HTTP API at ``url``; every method raises ConsulError naming the request that failed.

    Requests go over persistent HTTP/1.1 connections, one per thread (a blocking query holds its
    connection for up to its wait, and the agents' threads ask at the same time). A request that
    fails on a connection that has served one before, with no answer, is sent once more on a new
    connection when it is idempotent (GET, HEAD, PUT, DELETE): Consul closes idle connections
    and forgets them when it restarts. Connections go straight to ``url``; no proxy from the
    environment is used.
    """

    def __init__(self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = 10.0,
                 ca_path: str | None = None, validate_certs: bool = True, client_cert: str | None = None,
                 client_key: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._context: ssl.SSLContext | None = None
        if self.url.startswith("https://"):
            context = ssl.create_default_context(cafile=ca_path)
            if not validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if client_cert:
                context.load_cert_chain(client_cert, client_key)
            self._context = context
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[http.client.HTTPConnection] = weakref.WeakSet()
        # A Consul behind a reverse proxy under a path: "/that/path"; "" for most.
        self._prefix = urllib.parse.urlsplit(self.url).path

    def request(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None,
                timeout: float | None = None, decode: bool = True) -> tuple[Any, int | None]:
        """Return ``(decoded JSON or None, X-Consul-Index or None)``; with ``decode`` False the body
        is read but not decoded, and the first item is None."""
        query = ""
        if params:
            query = "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        headers = {"X-Consul-Token": self.token} if self.token else {}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            status, raw, index = self._exchange(method, path + query, data, headers, timeout or self.timeout)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            raise ConsulError(f"Consul {method} {path} failed: cannot reach {self.url}: {exc}") from exc
        if status >= 300:
            detail = raw.decode("utf-8", "replace").strip()
            raise ConsulError(f"Consul {method} {path} failed: HTTP {status} {detail}", status)
        decoded = None
        if decode and raw.strip():
            try:
                decoded = json.loads(raw)
            except ValueError as exc:
                raise ConsulError(f"Consul {method} {path} answered something that is not JSON") from exc
        return decoded, (int(index) if index and index.isdigit() else None)

    def close(self) -> None:
        """Close every connection the client holds; a later request opens a new one."""
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            connection.close()

    def _exchange(self, method: str, target: str, data: bytes | None, headers: dict[str, str],
                  timeout: float) -> tuple[int, bytes, str | None]:
        """One request and its whole answer on this thread's connection: (status, body, X-Consul-Index)."""
        while True:
            connection, reused = self._connection(timeout)
            try:
                connection.request(method, self._prefix + target, body=data, headers=headers)
                response = connection.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop(connection)
                if reused and method in _IDEMPOTENT and isinstance(exc, _NO_ANSWER):
                    continue  # the connection was stale; the next one is new, so this retries once
                raise
            if response.will_close:
                self._drop(connection)
            else:
                self._local.served = True
            return response.status, raw, response.getheader("X-Consul-Index")

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection with ``timeout`` (seconds), and whether it served a request before."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            return connection, getattr(self._local, "served", False)
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unknown url type: {self.url!r} (expected http://host:port or https://host:port)")
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                                     context=self._context)
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self._local.connection, self._local.served = connection, False
        with self._lock:
            self._connections.add(connection)
        return connection, False

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._local.connection = None
        with self._lock:
            self._connections.discard(connection)

    def _blocking(self, path: str, index: int | None, wait: float,
                  params: dict[str, Any] | None = None, decode: bool = True) -> tuple[Any, int | None]:
        query = dict(params or {})
        if index:
            # Consul answers at the latest after `wait` plus up to wait/16 of jitter.
            query.update(index=index, wait=f"{wait}s")
        return self.request("GET", path, params=query, timeout=wait + wait / 16 + 5 if index else None, decode=decode)

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
    def catalog_services_index(self, index: int | None = None, wait: float = 60) -> tuple[None, int | None]:
        """``(None, X-Consul-Index)`` of /v1/catalog/services, its body not decoded: for a watch
        that only needs to know when a service was registered, changed or removed."""
        return self._blocking("/v1/catalog/services", index, wait, decode=False)

    def catalog_nodes(self, index: int | None = None, wait: float = 60) -> tuple[Any, int | None]:
        return self._blocking("/v1/catalog/nodes", index, wait)

    def health_state(self, index: int | None = None, wait: float = 60) -> tuple[Any, int | None]:
        return self._blocking("/v1/health/state/any", index, wait)

    def health_service(self, name: str, index: int | None = None, wait: float = 60) -> tuple[Any, int | None]:
        return self._blocking("/v1/health/service/" + path_segment(name), index, wait)
