# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Watches Consul: asks for a full pass when Consul comes back (a dev agent restarts empty) or
loses one of the services this agent registered."""

from __future__ import annotations

import logging
import threading

from ansible_collections.autoproxy.stack.agents._common import Backoff
from ansible_collections.autoproxy.stack.agents._registrator_state import ExpectedServices
from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, ConsulError
from ansible_collections.autoproxy.stack.plugins.module_utils._registrations import owned_services

log = logging.getLogger("autoproxy.registrator")


class ConsulWatch:
    def __init__(self, consul: ConsulClient, owner: str, expected: ExpectedServices,
                 stopping: threading.Event, sync_wanted: threading.Event) -> None:
        self.consul = consul
        self.owner = owner
        self.expected = expected
        self.stopping = stopping
        self.sync_wanted = sync_wanted

    def missing_expected(self) -> set[str]:
        if not len(self.expected):
            return set()
        return self.expected.missing_from(owned_services(self.consul.agent_services(), self.owner))

    def loop(self) -> None:
        index = None
        was_down = False
        backoff = Backoff(first=0.1, cap=1.0)
        while not self.stopping.is_set():
            try:
                _unused, new_index = self.consul.catalog_services_index(index=index, wait=30)
                missing: set[str] = self.missing_expected() if index is not None and new_index != index else set()
            except ConsulError as exc:
                if not was_down:
                    log.warning("Consul unreachable: %s", exc)
                was_down = True
                index = None
                backoff.sleep(self.stopping)
                continue
            backoff.reset()
            if was_down or missing or (index and new_index and new_index < index):
                log.info("Consul %s: reconciling now", f"lost {len(missing)} of our services" if missing else "is back")
                self.sync_wanted.set()
                was_down = False
            index = new_index
