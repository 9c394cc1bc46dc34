# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One worker per container at a time, on a bounded pool of threads that exit when idle.

Every decision about a container runs as a task on its key (the container name): tasks of one
key run strictly in order and never two at once, so a container's state has one owner; tasks of
different keys run in parallel, at most ``max_workers`` at once, so a slow Consul call for one
container never delays another. A key with more work goes to the back of the line after each
task, so a busy container cannot starve the others. Threads start on demand and exit after
``idle_seconds`` without work; nothing is kept for a key that has no task pending.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("autoproxy.registrator")


class ContainerWorkers:
    """Per-key serial task queues served by a bounded, self-shrinking pool of threads."""

    def __init__(self, on_error: Callable[[str, BaseException], None], max_workers: int = 32,
                 idle_seconds: float = 2.0, name: str = "container") -> None:
        self.on_error = on_error
        self.max_workers = max_workers
        self.idle_seconds = idle_seconds
        self.name = name
        self._lock = threading.Lock()
        self._work_ready = threading.Condition(self._lock)
        self._pending: dict[str, collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]]] = {}
        self._ready: collections.deque[str] = collections.deque()  # keys with tasks and no thread on them
        self._threads = 0
        self._idle = 0

    def submit(self, key: str, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` behind the key's earlier tasks."""
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = collections.deque()
                self._ready.append(key)
                self._wake_or_start()
            pending.append((fn, args))

    def stats(self) -> tuple[int, int]:
        """(threads now, keys with pending or running tasks)."""
        with self._lock:
            return self._threads, len(self._pending)

    def _wake_or_start(self) -> None:
        if self._idle:
            self._work_ready.notify()
        elif self._threads < self.max_workers:
            self._threads += 1
            threading.Thread(target=self._serve, name=f"{self.name}-worker", daemon=True).start()

    def _serve(self) -> None:
        with self._lock:
            while True:
                while not self._ready:
                    self._idle += 1
                    woken = self._work_ready.wait(self.idle_seconds)
                    self._idle -= 1
                    if not woken and not self._ready:
                        self._threads -= 1
                        return
                key = self._ready.popleft()
                fn, args = self._pending[key].popleft()
                self._lock.release()
                try:
                    fn(*args)
                except Exception as exc:  # noqa: BLE001 - one failing container must not stop the others
                    self.on_error(key, exc)
                finally:
                    self._lock.acquire()
                if self._pending[key]:
                    self._ready.append(key)
                else:
                    del self._pending[key]
