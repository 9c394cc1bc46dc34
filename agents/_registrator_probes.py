# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fast first probes of new services' checks, on a bounded pool of threads that exit when idle.

A probe is a series of short attempts (``probe_once``) at a fixed pace until one passes, the
deadline passes or its container cancels it. Between attempts a probe holds no thread: due
attempts wait in a heap, and at most ``max_workers`` attempts run at once, so 500 new services
that do not answer yet cost 500 heap entries, not 500 threads. The result goes back to the
container's own worker, which alone decides what to register.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.autoproxy.stack.plugins.module_utils._registrations import http_status_passes

log = logging.getLogger("autoproxy.registrator")

_NO_PROXY = urllib.request.ProxyHandler({})


def _http_opener(skip_verify: bool) -> urllib.request.OpenerDirector:
    if not skip_verify:
        return urllib.request.build_opener(_NO_PROXY)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(_NO_PROXY, urllib.request.HTTPSHandler(context=context))


def probe_once(target: Mapping[str, Any]) -> bool:
    """One attempt of a service's declared check (``probe_target``'s shape), judged as Consul would."""
    try:
        if target["kind"] == "tcp":
            with socket.create_connection((target["host"], target["port"]), timeout=target["timeout"]):
                return True
        request = urllib.request.Request(target["url"], method=target["method"])
        try:
            with _http_opener(target["tls_skip_verify"]).open(request, timeout=target["timeout"]) as resp:
                return http_status_passes(resp.status)
        except urllib.error.HTTPError as exc:
            return http_status_passes(exc.code)
    except (OSError, ValueError, urllib.error.URLError):
        return False


@dataclass(order=True)
class _Probe:
    due: float
    seq: int
    target: Mapping[str, Any] = field(compare=False)
    interval: float = field(compare=False)
    deadline: float = field(compare=False)
    cancelled: threading.Event = field(compare=False)
    on_done: Callable[[bool], None] = field(compare=False)


class ProbePool:
    """Runs probes' attempts on at most ``max_workers`` threads; reports each probe's end once."""

    def __init__(self, stopping: threading.Event, max_workers: int = 8, idle_seconds: float = 2.0) -> None:
        self.stopping = stopping
        self.max_workers = max_workers
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._due = threading.Condition(self._lock)
        self._heap: list[_Probe] = []
        self._seq = itertools.count()
        self._threads = 0

    def start(self, target: Mapping[str, Any], interval: float, timeout: float,
              on_done: Callable[[bool], None]) -> threading.Event:
        """Probe ``target`` every ``interval`` s for up to ``timeout`` s; ``on_done(passed)`` at the end.

        Returns the probe's cancel flag: once set, no further attempt runs and ``on_done`` is not called.
        """
        cancelled = threading.Event()
        now = time.monotonic()
        self._push(_Probe(now, next(self._seq), target, interval, now + timeout, cancelled, on_done))
        return cancelled

    def stats(self) -> tuple[int, int]:
        """(threads now, probes waiting for their next attempt)."""
        with self._lock:
            return self._threads, len(self._heap)

    def _push(self, probe: _Probe) -> None:
        with self._lock:
            heapq.heappush(self._heap, probe)
            self._due.notify()
            if self._threads < self.max_workers and len(self._heap) > self._threads:
                self._threads += 1
                threading.Thread(target=self._serve, name="probe-worker", daemon=True).start()

    def _next_due(self) -> _Probe | None:
        """The next attempt once it is due (lock held), or None when idle long enough to exit."""
        idle_since = time.monotonic()
        while not self.stopping.is_set():
            now = time.monotonic()
            if self._heap and self._heap[0].due <= now:
                return heapq.heappop(self._heap)
            if not self._heap and now - idle_since >= self.idle_seconds:
                return None
            wait = self._heap[0].due - now if self._heap else self.idle_seconds
            self._due.wait(min(wait, self.idle_seconds))
        return None

    def _serve(self) -> None:
        while True:
            with self._lock:
                probe = self._next_due()
                if probe is None:
                    self._threads -= 1
                    return
            if probe.cancelled.is_set():
                continue
            passed = probe_once(probe.target)
            if passed or time.monotonic() >= probe.deadline or self.stopping.is_set():
                if not probe.cancelled.is_set():
                    try:
                        probe.on_done(passed)
                    except Exception:  # noqa: BLE001 - a failing callback must not end the pool's thread
                        log.exception("probe result of %s not delivered", probe.target)
                continue
            probe.due = time.monotonic() + probe.interval
            probe.seq = next(self._seq)
            self._push(probe)
