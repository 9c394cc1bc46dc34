# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Last-known-good: a catalog that lost most of its services is held back until it is confirmed.

consul-template rendered empty configs after a Consul restart (#1713) and fabio dropped every
route while its agent restarted (#861). Here, when a new table would take more than half of the
backends that have servers out of service (or all of them), those backends are kept as they
were; the rest of the change still goes through. The drop is applied only once a read at least
``confirm_after`` seconds later still shows it and Consul has had no fault (unreachable, or
restarted with a lower index) for ``fault_hold`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def live_backends(table: Mapping[str, Any]) -> set[str]:
    return {name for name, backend in table["backends"].items() if backend["servers"]}


def keep_backends(new: Mapping[str, Any], old: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """``new`` with the backends ``names`` (and their hosts) as they were in ``old``."""
    backends = dict(new["backends"])
    hosts = dict(new["hosts"])
    for name in names:
        backends[name] = old["backends"][name]
        for host in old["backends"][name]["hosts"]:
            hosts.setdefault(host, name)
    return dict(new, backends={k: backends[k] for k in sorted(backends)}, hosts={k: hosts[k] for k in sorted(hosts)})


class DropGuard:
    def __init__(self, confirm_after: float = 3.0, fault_hold: float = 30.0) -> None:
        self.confirm_after = confirm_after
        self.fault_hold = fault_hold
        self.first_seen: float | None = None

    def suspicious_drop(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
        """The live backends a change would take out of service, if that is more than half of them."""
        before = live_backends(old)
        dropped = before - live_backends(new)
        if before and (len(dropped) * 2 > len(before) or len(dropped) == len(before)):
            return dropped
        return set()

    def filter(
        self, old: Mapping[str, Any] | None, new: dict[str, Any], now: float, last_fault: float | None
    ) -> tuple[dict[str, Any], set[str], float | None]:
        """(table to apply, held backend names, seconds until a re-read can confirm or None)."""
        if old is None:
            return new, set(), None
        dropped = self.suspicious_drop(old, new)
        if not dropped:
            self.first_seen = None
            return new, set(), None
        if self.first_seen is None:
            self.first_seen = now
        confirmed_at = max(self.first_seen + self.confirm_after, (last_fault or -1e18) + self.fault_hold)
        if now >= confirmed_at:
            self.first_seen = None
            return new, set(), None
        return keep_backends(new, old, sorted(dropped)), dropped, confirmed_at - now
