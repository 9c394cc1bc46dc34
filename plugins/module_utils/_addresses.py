# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Ports and ``host:port`` text, written once for the routing table, the HAProxy config, the
container rules and the probes. Pure and stdlib-only."""

from __future__ import annotations

import re

MAX_PORT = 65535
# ASCII digits only: int() alone would take '+80', ' 80', '8_0' and digits like '²'.
_PORT_RE = re.compile(r"[0-9]{1,5}\Z")


def parse_port(value: object) -> int | None:
    """A TCP or UDP port, 1 to 65535, from an int or a string of ASCII digits; None for anything else.

    ``80`` and ``"80"`` give 80; ``True``, ``0``, ``"+80"``, ``" 80"``, ``"²"`` and ``"65536"`` give None.
    """
    if isinstance(value, str) and _PORT_RE.match(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_PORT:
        return value
    return None


def host_port(address: str, port: int) -> str:
    """``address:port``, an IPv6 address in brackets (``[fd00::1]:80``), as URLs, HAProxy and Consul write it.

    ``address`` is an IP address or a host name (a host name has no ``:``).
    """
    return f"[{address}]:{port:d}" if ":" in address else f"{address}:{port:d}"


def split_host_port(text: str) -> tuple[str, int] | None:
    """``(address, port)`` from what host_port() writes, IPv6 brackets removed; None when there is no valid port."""
    address, separator, port_text = text.rpartition(":")
    port = parse_port(port_text)
    if not separator or not address or port is None:
        return None
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    return address, port
