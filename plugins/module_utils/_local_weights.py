# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Local-first weights (docs/RULES.md §18): a proxy favours the servers on its own host.

A proxy on one host of a fleet routes to every host's servers; the ones on its own host answer
without crossing the network. Given the addresses that are this host's (the address host-mode
registrations carry) and a local weight, local_weights() raises those servers' weights in a
routing table. Both ways a table reaches HAProxy, the rendered config and the Runtime API
(``set server ... weight``), then carry the same weights, from this one rule.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.autoproxy.stack.plugins.module_utils._options import ROUTING_OPTIONS, IntRange
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import is_ip_literal, valid_address
from ansible_collections.autoproxy.stack.plugins.module_utils._text import show


def _highest(bounds: Any) -> int:
    if not isinstance(bounds, IntRange):
        raise TypeError("the weight option's values must be an IntRange")
    return bounds.high


_WEIGHT = ROUTING_OPTIONS["weight"]
# The weight a server has without a weight= tag: HAProxy's default.
DEFAULT_WEIGHT: int = _WEIGHT.haproxy.runtime_unset
MAX_WEIGHT: int = _highest(_WEIGHT.value)
OFF = 0


@functools.lru_cache(maxsize=4096)  # a fleet has few distinct addresses; each build asks for every server's
def same_address_key(address: str) -> str:
    """The form two spellings of one address share: an IP in its compressed form
    (``0:0::1`` and ``::1`` are one), a host name lower-cased."""
    if is_ip_literal(address):
        return str(ipaddress.ip_address(address))
    return address.lower()


def effective_weight(tag_weight: int | None, local_weight: int) -> int:
    """A local server's weight: its ``weight=`` tag (HAProxy's default 1 without one) times
    ``local_weight``, at most 256, HAProxy's highest; ``local_weight`` 0 (off) keeps the tag's.
    A ``weight=0`` server stays at 0: a server taken out stays out."""
    base = DEFAULT_WEIGHT if tag_weight is None else tag_weight
    if local_weight == OFF:
        return base
    return min(MAX_WEIGHT, base * local_weight)


@dataclass(frozen=True)
class LocalWeights:
    """Which addresses are this host's and the factor their servers get (0: off)."""

    addresses: frozenset[str] = frozenset()
    weight: int = OFF

    @classmethod
    def checked(cls, addresses: Iterable[str], weight: int) -> LocalWeights:
        """LocalWeights from an agent's options; ValueError naming the option and the bad value.

        ``addresses`` are IP addresses or host names, as the registrations of this host's
        containers carry them (the host's address on the fleet network in host mode);
        ``weight`` is an integer 0 to 256.
        """
        if isinstance(weight, bool) or not isinstance(weight, int) or not OFF <= weight <= MAX_WEIGHT:
            raise ValueError(f"local weight must be an integer {OFF}-{MAX_WEIGHT}, got {show(weight)}")
        keys = set()
        for address in addresses:
            if not valid_address(address):
                raise ValueError(f"local address {show(address)} is not an IP address (without zone index) "
                                 f"or host name")
            keys.add(same_address_key(address))
        return cls(frozenset(keys), weight)

    @property
    def active(self) -> bool:
        """True when the rule can change a weight: a factor other than 0 and 1, and addresses."""
        return self.weight not in (OFF, 1) and bool(self.addresses)

    def is_local(self, address: str) -> bool:
        return address in self.addresses or same_address_key(address) in self.addresses


def local_weights(table: Mapping[str, Any], local: LocalWeights) -> dict[str, Any]:
    """``table`` (a routing table) with each local server's ``weight`` set to effective_weight().

    Servers elsewhere keep their tags' weights (or none: HAProxy's default). The table is not
    changed in place; backends without a local server are shared with it, unchanged.
    """
    if not local.active:
        return dict(table)
    backends = {}
    for name, backend in table["backends"].items():
        servers = backend["servers"]
        if any(local.is_local(server["address"]) for server in servers):
            backend = dict(backend, servers=[_weighted(server, local) for server in servers])
        backends[name] = backend
    return dict(table, backends=backends)


def _weighted(server: Mapping[str, Any], local: LocalWeights) -> dict[str, Any]:
    if not local.is_local(server["address"]):
        return dict(server)
    return dict(server, weight=effective_weight(server.get("weight"), local.weight))
