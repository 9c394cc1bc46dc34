# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The proxy agent's HAProxy: a ProxyBackend (see _proxy_backend) over HAProxy in master-worker mode.

A change of servers (membership, weight, address, health) and a new service with default
options go through the Runtime API without a reload (HAProxy checks each server it adds); the
files on disk follow a moment later from a background thread (ConfigWriter), so a later reload
loses nothing and a burst of changes costs one render. Anything else is rendered whole,
validated with ``haproxy -c`` (the backends changed since the last validation; a service HAProxy
rejects is left out and named in the log) and applied with a verified master CLI reload.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import subprocess
import threading
import time
from typing import Any

from ansible_collections.autoproxy.stack.agents._proxy_backend import RoutingTable
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import (
    CONFIG_NAME,
    HaproxyError,
    cli_command,
    render_validated,
    without_backends,
    write_files,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_frontend import consul_ui_hosts
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_master import verified_reload, worker_pids
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_runtime import (
    RunningState,
    RuntimeApi,
    RuntimeApiError,
    plan_changes,
    send_command,
)

log = logging.getLogger("autoproxy.proxy")
SPARE_GROWTH_LIMIT = 32
# How long the file writer waits for more changes before it renders: a burst costs one render.
WRITE_DELAY = 0.5
# A reload: how long HAProxy has to report it, and the pause between two reads of its master CLI.
RELOAD_TIMEOUT = 30.0
RELOAD_POLL = 0.05


def _comparable(table: RoutingTable) -> dict[str, Any]:
    return {"backends": table["backends"], "hosts": table["hosts"]}


def new_worker_serves(runtime_socket: str, new_workers: set[int]) -> bool:
    """True once one of ``new_workers`` (PIDs) answers ``show info`` on the runtime socket."""
    try:
        return bool(new_workers) and runtime_pid(send_command(runtime_socket, "show info")) in new_workers
    except RuntimeApiError:
        return False  # the master re-executes itself on reload and briefly refuses connections


def runtime_pid(show_info: str) -> int | None:
    """The worker PID in the runtime socket's ``show info`` answer, or None."""
    for line in show_info.splitlines():
        key, _sep, value = line.partition(":")
        if key.strip() == "Pid" and value.strip().isdigit():
            return int(value)
    return None


class ConfigWriter:
    """Writes the files of the table HAProxy runs, off the apply path.

    ``later(table, settings)`` asks for a write; a background thread renders and writes the
    newest one after WRITE_DELAY. ``now(files)`` writes at once (before a start or a reload) and
    cancels what was asked before, so an older table never overwrites a newer config.
    """

    def __init__(self, directory: str, delay: float = WRITE_DELAY) -> None:
        self.directory = directory
        self.delay = delay
        self.lock = threading.Condition()
        self.pending: tuple[RoutingTable, HaproxySettings] | None = None
        self.generation = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="config-writer", daemon=True)
        self.thread.start()

    def later(self, table: RoutingTable, settings: HaproxySettings) -> None:
        with self.lock:
            self.pending = (table, settings)
            self.generation += 1
            self.lock.notify()

    def now(self, files: dict[str, str]) -> None:
        with self.lock:
            self.pending = None
            self.generation += 1
            write_files(self.directory, files)

    def stop(self) -> None:
        """Write what is pending, then end the thread."""
        with self.lock:
            self.stopping = True
            self.lock.notify()
        self.thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self.lock:
                while self.pending is None and not self.stopping:
                    self.lock.wait()
                if self.pending is None:
                    return
                # More changes may come meanwhile; the newest one wins. later() notifies, so wait
                # out the whole delay, not just until the next change.
                deadline = time.monotonic() + self.delay
                while not self.stopping and self.pending is not None and time.monotonic() < deadline:
                    self.lock.wait(deadline - time.monotonic())
                if self.pending is None:
                    continue
                (table, settings), generation = self.pending, self.generation
            try:
                files = render_haproxy_config(table, settings)
            except ValueError as exc:
                log.error("cannot render the running routes to %s: %s", self.directory, exc)
                files = None
            with self.lock:
                if generation != self.generation:
                    continue  # a newer table or a reload's own files came meanwhile
                self.pending = None
                if files is not None:
                    try:
                        write_files(self.directory, files)
                    except OSError as exc:
                        log.error("cannot write the configuration to %s: %s", self.directory, exc)


class HaproxyBackend:
    """HAProxy run by the agent, kept in step with routing tables with as few reloads as it allows."""

    errors: tuple[type[Exception], ...] = (HaproxyError, RuntimeApiError)

    def __init__(self, args: argparse.Namespace, settings: HaproxySettings) -> None:
        self.args = args
        self.settings = settings
        self.runtime = RuntimeApi(args.runtime_socket, settings, drain_timeout=args.drain_timeout)
        self.writer = ConfigWriter(args.config_dir)
        self.process: subprocess.Popen[bytes] | None = None
        self.applied: RoutingTable | None = None
        self.state: RunningState | None = None
        self.rejected: dict[str, Any] = {}  # backend name -> its content when HAProxy rejected it
        # The settings of the last validation and the backends it accepted (name -> content).
        self.accepted: tuple[HaproxySettings, dict[str, Any]] | None = None
        self.last_change = time.monotonic()

    @property
    def table(self) -> RoutingTable | None:
        return self.applied

    # ---- the process
    def start(self, table: RoutingTable) -> None:
        os.makedirs(os.path.dirname(self.args.master_socket), exist_ok=True)
        os.makedirs(os.path.dirname(self.args.runtime_socket), exist_ok=True)
        files, table = self.validated(table)
        self.writer.now(files)
        cfg = os.path.join(self.args.config_dir, CONFIG_NAME)
        self.process = subprocess.Popen([self.args.haproxy, "-W", "-S", self.args.master_socket + ",level,admin",
                                         "-f", cfg])
        self.wait_for_worker()
        self.installed(table)
        log.info("HAProxy started (pid %s) with %d backends, listening on :%s, stats on :%s", self.process.pid,
                 len(table["backends"]), self.args.http_port, self.args.stats_port)

    def exit_status(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)  # soft stop: finish the requests in flight
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.writer.stop()

    def master(self, command: str) -> str:
        return cli_command(self.args.master_socket, command)

    def serving(self, new_workers: set[int]) -> bool:
        """True once one of ``new_workers`` answers on the runtime socket."""
        if self.process is None or self.process.poll() is not None:
            raise HaproxyError(f"HAProxy exited with status {self.process.returncode if self.process else None}")
        return new_worker_serves(self.args.runtime_socket, new_workers)

    def wait_for_worker(self, timeout: float = 30.0) -> None:
        """Wait until the first worker runs and answers on the runtime socket."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.serving(worker_pids(self.master("show proc"))):
                    return
            except HaproxyError:
                if self.exit_status() is not None:
                    raise
            time.sleep(0.05)
        raise HaproxyError(f"no HAProxy worker after {timeout:.0f}s")

    def reload(self, table: RoutingTable, why: str, settings: HaproxySettings | None = None) -> None:
        """Render, validate and apply ``table`` with a master reload; ``settings`` replace the
        running ones only once the new worker runs."""
        settings = settings or self.settings
        files, table = self.validated(table, settings)
        self.writer.now(files)
        try:
            verified_reload(self.master, timeout=RELOAD_TIMEOUT, interval=RELOAD_POLL, ready=self.serving)
        except HaproxyError:
            # Whatever HAProxy refused, the next try checks every backend again, not only what changed.
            self.accepted = None
            raise
        if settings is not self.settings:
            self.settings = self.runtime.settings = settings
            log.info("the running config declares %d spare backends", settings.spare_backends)
        self.installed(table)
        log.info("reloaded HAProxy (%s): %d backends", why, len(table["backends"]))

    def grown_spares(self) -> HaproxySettings:
        """Settings with twice the spare backends (up to 32 times the configured number), for the
        reload that follows when new services used them all: a burst of new services costs a few
        reloads, not one per pool."""
        grown = min(self.settings.spare_backends * 2, self.args.spare_backends * SPARE_GROWTH_LIMIT)
        if grown <= self.settings.spare_backends:
            return self.settings
        return dataclasses.replace(self.settings, spare_backends=grown)

    def installed(self, table: RoutingTable) -> None:
        self.applied = table
        self.state = RunningState.from_table(table, self.settings)
        self.runtime.forget()

    # ---- validation
    def screen(self, table: RoutingTable) -> RoutingTable:
        # A backend HAProxy rejected stays out while its content is the same, without re-validating.
        known_bad = [name for name, backend in table["backends"].items() if self.rejected.get(name) == backend]
        return without_backends(table, known_bad) if known_bad else table

    def validated(
        self, table: RoutingTable, settings: HaproxySettings | None = None
    ) -> tuple[dict[str, str], RoutingTable]:
        settings = settings or self.settings
        # What haproxy -c accepted under the same settings is not checked again: a reload costs
        # what changed since the last one.
        known = self.accepted[1] if self.accepted is not None and self.accepted[0] == settings else None
        files, kept, rejected = render_validated(table, settings, (self.args.haproxy,), accepted=known)
        for name, service, reason in rejected:
            self.rejected[name] = table["backends"][name]
            log.error("service %r (backend %s) left out: haproxy -c rejects it: %s", service, name, reason)
        self.accepted = (settings, dict(kept["backends"]))
        return files, kept

    # ---- applying
    def update(self, table: RoutingTable) -> bool:
        if self.applied is None or self.state is None:
            raise HaproxyError("HAProxy is not running")
        if _comparable(table) == _comparable(self.applied):
            return False
        plan = plan_changes(self.state, table)
        guarded = self.settings.consul_ui_service
        if not plan.reload_reason and consul_ui_hosts(table, guarded) != consul_ui_hosts(self.applied, guarded):
            # Its guard is frontend config: a host routed through the Runtime API alone would be open.
            plan.reload_reason = "the Consul UI's hosts changed"
        if plan.reload_reason:
            self.reload(table, plan.reload_reason, self.grown_spares() if plan.out_of_spares else None)
            return True
        # A new backend here runs on a spare with default options: its only content is servers,
        # and HAProxy checks each 'add server' as it would the server line. What it refuses
        # falls back to the reload below, which validates the changed backends with haproxy -c
        # and leaves out (and logs) the service it rejects.
        try:
            self.runtime.apply(plan.steps)
        except RuntimeApiError as exc:
            self.reload(table, f"the Runtime API refused a change: {exc}")
            return True
        # Servers only: HAProxy already runs the change; the file follows for the next reload.
        self.writer.later(table, self.settings)
        self.applied, self.state = table, plan.state
        self.last_change = time.monotonic()
        log.info("applied %d Runtime API changes without a reload (%d backends)", len(plan.steps),
                 len(table["backends"]))
        return True

    # ---- work without a change
    def tick(self, busy: bool) -> None:
        if self.runtime.draining:
            try:
                self.runtime.retry_removals()
            except RuntimeApiError as exc:
                log.warning("removing drained servers: %s", exc)
        if not busy and self.rename_due() and self.applied is not None:
            try:
                self.reload(self.applied, "quiet now: backends on spare slots get their own names")
            except HaproxyError as exc:
                log.warning("reload to rename backends failed, keeping the running configuration: %s", exc)
                self.last_change = time.monotonic()

    def rename_due(self) -> bool:
        """HAProxy cannot rename a backend at runtime; a reload at a quiet moment can."""
        if self.args.rename_after <= 0 or self.runtime.draining or self.state is None:
            return False
        if time.monotonic() - self.last_change < self.args.rename_after:
            return False
        return any(running["proxy"] != name for name, running in self.state.backends.items())
