# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The index of which running containers ask for which service ID (plugins/module_utils/_service_id_ownership.py).

Each container's task writes only its own claims; any task reads who holds an ID. The index is
the one piece of state shared between containers, so it has its own lock and is bounded by the
running containers: a container that stops, drains or goes away releases its claims.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ansible_collections.autoproxy.stack.plugins.module_utils._service_id_ownership import (
    HELD,
    NEW,
    claim_standing,
    id_holder,
)

Claim = tuple[str, tuple[str, str, str]]  # (standing, claim order)


class ServiceIdClaims:
    """Service ID -> {container name: (standing, claim order)} for the containers that ask for it now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, dict[str, Claim]] = {}
        self._by_container: dict[str, frozenset[str]] = {}

    def claim(self, container: str, service_ids: Iterable[str], order: tuple[str, str, str],
              registered_ids: Iterable[str] | None = None) -> tuple[dict[str, str | None], set[str]]:
        """Record that ``container`` asks for exactly ``service_ids`` now.

        ``registered_ids``: the container's service IDs in Consul, or None when not read this time
        (the standing recorded before is kept).

        Returns ``(holders, moved)``: the holder of each of those IDs, and the other containers
        whose holding changed by this claim (they must reconcile now, not at the next full pass).
        """
        wanted = frozenset(service_ids)
        with self._lock:
            before = self._holders(self._by_container.get(container, frozenset()) | wanted)
            for service_id in self._by_container.get(container, frozenset()) - wanted:
                self._drop(service_id, container)
            registered = None if registered_ids is None else set(registered_ids)
            for service_id in wanted:
                claimants = self._by_id.setdefault(service_id, {})
                if registered is not None:
                    standing = claim_standing(service_id, container, registered)
                else:
                    standing = claimants.get(container, (NEW, order))[0]
                claimants[container] = (standing, order)
            if wanted:
                self._by_container[container] = wanted
            else:
                self._by_container.pop(container, None)
            after = self._holders(before)
            holders = {service_id: after[service_id] for service_id in wanted}
        return holders, _moved(before, after, container)

    def registered(self, container: str, service_id: str) -> None:
        """``container`` is now registered under ``service_id`` as written: it holds the ID."""
        with self._lock:
            claim = self._by_id.get(service_id, {}).get(container)
            if claim is not None:
                self._by_id[service_id][container] = (HELD, claim[1])

    def release(self, container: str) -> set[str]:
        """``container`` asks for nothing any more; returns the containers that took over an ID."""
        return self.claim(container, (), ("", "", ""))[1]

    def contested(self) -> int:
        """How many IDs more than one container asks for (for logs and tests)."""
        with self._lock:
            return sum(1 for claimants in self._by_id.values() if len(claimants) > 1)

    def size(self) -> tuple[int, int]:
        """(service IDs, containers) held in the index."""
        with self._lock:
            return len(self._by_id), len(self._by_container)

    def _holders(self, service_ids: Iterable[str]) -> dict[str, str | None]:
        return {service_id: id_holder(self._by_id.get(service_id, {})) for service_id in service_ids}

    def _drop(self, service_id: str, container: str) -> None:
        claimants = self._by_id.get(service_id)
        if claimants is None:
            return
        claimants.pop(container, None)
        if not claimants:
            del self._by_id[service_id]


def _moved(before: dict[str, str | None], after: dict[str, str | None], container: str) -> set[str]:
    moved: set[str] = set()
    for service_id, old in before.items():
        new = after.get(service_id)
        if old != new:
            moved.update(name for name in (old, new) if name is not None and name != container)
    return moved
