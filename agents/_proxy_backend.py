# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The seam between the proxy agent and the proxy it drives.

The agent reads Consul, builds the routing table (plugins/module_utils/_routing.py, proxy-
neutral) and holds back suspicious drops; a ProxyBackend does the rest: it leaves out what the
proxy rejects, decides between a change at run time and a reload, renders and writes the
proxy's files. _haproxy_backend.HaproxyBackend is the one implementation.
"""

from __future__ import annotations

from typing import Any, Protocol

# The routing table of _routing.build_routing_table(): {"backends", "hosts", "warnings"}.
RoutingTable = dict[str, Any]


class ProxyBackend(Protocol):
    """A proxy the agent keeps in step with a routing table.

    Methods raise the backend's own errors for a failure the agent should retry (see ``errors``):
    the running configuration then stays as it was.
    """

    # Exceptions after which the running configuration is unchanged and the update may be retried.
    errors: tuple[type[Exception], ...]

    @property
    def table(self) -> RoutingTable | None:
        """The routing table the proxy runs; None before start()."""

    def screen(self, table: RoutingTable) -> RoutingTable:
        """``table`` without the backends the proxy rejected before with the same content."""

    def start(self, table: RoutingTable) -> None:
        """Start the proxy with ``table`` (what the proxy rejects is left out and logged)."""

    def update(self, table: RoutingTable) -> bool:
        """Make the running proxy route ``table``; False when it already did (nothing done)."""

    def tick(self, busy: bool) -> None:
        """Work that is due without a catalog change; ``busy`` when a change is waiting."""

    def exit_status(self) -> int | None:
        """The proxy's exit status once it has exited, else None."""

    def stop(self) -> None:
        """Stop the proxy and wait for it."""
