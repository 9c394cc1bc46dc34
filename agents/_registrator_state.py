# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the registrator agent remembers about one container, and the service IDs it expects in Consul.

A ``ContainerState`` is read and written only by its container's tasks (agents/_registrator_workers.py
runs them one at a time), so it needs no lock; it is dropped when the container is gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ContainerState:
    """One container's memory between its tasks."""

    draining_until: float | None = None          # monotonic deadline of a drain that keeps it out of Consul
    warned: tuple[str, ...] | None = None         # warnings last logged (logged again only when they change)
    health_sent: tuple[str | None, float] | None = None  # (Consul status, monotonic time) last sent
    refused: dict[tuple[str, str], float] = field(default_factory=dict)  # (ID, digest) -> monotonic retry time
    probing: dict[str, tuple[str, threading.Event]] = field(default_factory=dict)  # ID -> (digest, cancel flag)
    desired: list[dict[str, Any]] | None = None   # registrations of the running container, for full passes
    written_at: float = float("-inf")             # monotonic time of its last register or deregister

    def wrote(self) -> None:
        """Note a register or deregister of this container's services, now."""
        self.written_at = time.monotonic()

    def wrote_since(self, taken: float) -> bool:
        """Whether this container's services were written since monotonic time ``taken`` (a read then is stale)."""
        return self.written_at >= taken


class ExpectedServices:
    """The service IDs this agent believes Consul holds (shared by every container's tasks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    def mark(self, service_id: str, present: bool) -> None:
        with self._lock:
            (self._ids.add if present else self._ids.discard)(service_id)

    def missing_from(self, owned_ids: Iterable[str]) -> set[str]:
        """Expected IDs not among ``owned_ids`` (what Consul holds with our owner mark)."""
        with self._lock:
            expected = set(self._ids)
        return expected - set(owned_ids)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)
