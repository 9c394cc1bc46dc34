# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Threads and I/O the registrator agent needs beside the rules: a per-key serial executor and probes."""

from __future__ import annotations

import collections
import logging
import socket
import ssl
import threading
import urllib.error
import urllib.request

from ansible_collections.autoproxy.stack.plugins.module_utils._registrations import http_status_passes

log = logging.getLogger("autoproxy.registrator")


class KeyedSerialExecutor:
    """Runs tasks of one key strictly in order and tasks of different keys in parallel.

    Every decision about a container runs on its key (the container name), so a slow probe or
    Consul call for one container never delays another, and two events of one container are
    never reordered. At most ``max_parallel`` keys run at once.
    """

    def __init__(self, on_error, max_parallel=32):
        self.on_error = on_error
        self.lock = threading.Lock()
        self.queues = {}
        self.slots = threading.BoundedSemaphore(max_parallel)

    def submit(self, key, fn, *args):
        with self.lock:
            pending = self.queues.get(key)
            if pending is not None:
                pending.append((fn, args))
                return
            self.queues[key] = collections.deque([(fn, args)])
        threading.Thread(target=self._run_key, args=(key,), name=f"key-{key}"[:60], daemon=True).start()

    def _run_key(self, key):
        with self.slots:
            while True:
                with self.lock:
                    pending = self.queues[key]
                    if not pending:
                        del self.queues[key]
                        return
                    fn, args = pending.popleft()
                try:
                    fn(*args)
                except Exception as exc:  # noqa: BLE001 - one failing container must not stop its queue
                    self.on_error(key, exc)


_NO_PROXY = urllib.request.ProxyHandler({})


def _http_opener(skip_verify):
    if not skip_verify:
        return urllib.request.build_opener(_NO_PROXY)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return urllib.request.build_opener(_NO_PROXY, urllib.request.HTTPSHandler(context=context))


def probe_once(target):
    """One attempt of a service's declared check, judged as Consul would judge it."""
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
