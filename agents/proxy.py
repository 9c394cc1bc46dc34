# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The proxy agent: Consul catalog -> routing table -> HAProxy, with as few reloads as HAProxy allows.

It runs HAProxy itself in master-worker mode and watches Consul with blocking queries. A change
of servers (membership, weight, address, health) and a new service with default options go
through the Runtime API without a reload; the files on disk are rewritten to match, so a later
reload loses nothing. Anything else is rendered whole, validated with ``haproxy -c`` (a service
HAProxy rejects is left out and named in the log) and applied with a master CLI reload. A
catalog that lost most of its services is held back until confirmed (see _proxy_guard).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from ansible_collections.autoproxy.stack.agents._common import Backoff, env_default, split_list
from ansible_collections.autoproxy.stack.agents._proxy_guard import DropGuard
from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, ConsulError, fetch_instances
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
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_master import verified_reload, worker_pids
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_runtime import (
    RunningState,
    RuntimeApi,
    RuntimeApiError,
    plan_changes,
    send_command,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table

log = logging.getLogger("autoproxy.proxy")
SPARE_GROWTH_LIMIT = 32


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="autoproxy-agent proxy", description=__doc__)
    add = parser.add_argument
    add("--consul", default=env_default("CONSUL_HTTP_ADDR", "http://127.0.0.1:8500"), help="Consul HTTP API URL")
    add("--consul-token", default=os.environ.get("CONSUL_HTTP_TOKEN"))
    add("--domains", default=env_default("HAPROXY_DOMAIN", "127.0.0.1.nip.io:test"),
        help="':'-separated domains every host also answers under (the seed's HAPROXY_DOMAIN)")
    add("--http-port", type=int, default=80)
    add("--stats-port", type=int, default=1936)
    add("--stats-user", default=os.environ.get("AUTOPROXY_STATS_USER"))
    add("--stats-password", default=os.environ.get("AUTOPROXY_STATS_PASSWORD"))
    add("--config-dir", default="/etc/haproxy/autoproxy")
    add("--master-socket", default="/run/haproxy/master.sock")
    add("--runtime-socket", default="/run/haproxy/admin.sock")
    add("--haproxy", default="haproxy", help="HAProxy binary")
    add("--debounce", type=float, default=0.2, help="seconds to coalesce further changes after one is applied")
    add("--check-interval", default="2s", help="interval of HAProxy's own server checks")
    add("--check-fall", type=int, default=2)
    add("--check-rise", type=int, default=1)
    add("--spare-backends", type=int, default=20,
        help="backends declared in advance so new services need no reload; doubled (up to 32 times) "
             "by the reload that follows when new services use them all")
    add("--rename-after", type=float, default=2.0,
        help="seconds of quiet after which one reload gives backends that run on spare slots their own names "
             "(stats page, logs); 0 never reloads for that")
    add("--hard-stop-after", default="30s", help="longest life of an old worker after a reload")
    add("--drain-timeout", type=float, default=30.0,
        help="seconds a removed server may keep its connections before they are shut down")
    add("--confirm-after", type=float, default=3.0,
        help="seconds before a second read may confirm that more than half of the services are gone")
    add("--fault-hold", type=float, default=30.0,
        help="seconds after a Consul fault during which such a drop is never applied")
    add("--access-log", action="store_true", help="log every request to stdout")
    add("--wait", type=int, default=55, help="blocking query wait, seconds")
    return parser.parse_args(argv)


def settings_from_args(args):
    return HaproxySettings(
        http_port=args.http_port,
        stats_port=args.stats_port,
        stats_user=args.stats_user or None,
        stats_password=args.stats_password or None,
        check_interval=args.check_interval,
        check_fall=args.check_fall,
        check_rise=args.check_rise,
        hard_stop_after=args.hard_stop_after,
        runtime_socket=args.runtime_socket,
        spare_backends=args.spare_backends,
        log_stdout=args.access_log,
    )


def _comparable(table):
    return {"backends": table["backends"], "hosts": table["hosts"]}


class ProxyAgent:
    def __init__(self, args):
        self.args = args
        self.consul = ConsulClient(args.consul, token=args.consul_token)
        self.domains = split_list(args.domains, ":")
        self.settings = settings_from_args(args)
        self.runtime = RuntimeApi(args.runtime_socket, self.settings, drain_timeout=args.drain_timeout)
        self.guard = DropGuard(args.confirm_after, args.fault_hold)
        self.changed = threading.Event()
        self.stopping = threading.Event()
        self.haproxy = None
        self.applied = None  # the routing table HAProxy runs
        self.state = None  # RunningState
        self.rejected = {}  # backend name -> its content when HAProxy rejected it
        self.last_fault = None
        self.recheck_at = None
        self.reloads = 0
        self.runtime_updates = 0
        self.last_change = time.monotonic()
        self.health_snapshot = None  # the health watch's last (checks, index), read by apply()
        self.known = {}  # services fetch_instances() read again once, see there

    # ---- HAProxy process
    def start_haproxy(self):
        os.makedirs(os.path.dirname(self.args.master_socket), exist_ok=True)
        os.makedirs(os.path.dirname(self.args.runtime_socket), exist_ok=True)
        try:
            table = self.build(fetch_instances(self.consul)[0])
        except ConsulError as exc:
            log.warning("Consul not reachable yet, starting with no routes: %s", exc)
            self.last_fault = time.monotonic()
            table = self.build([])
        files, table = self.validated(table)
        write_files(self.args.config_dir, files)
        cfg = os.path.join(self.args.config_dir, CONFIG_NAME)
        self.haproxy = subprocess.Popen([self.args.haproxy, "-W", "-S", self.args.master_socket + ",level,admin",
                                         "-f", cfg])
        self.wait_for_worker()
        self.installed(table)
        log.info("HAProxy started (pid %s) with %d backends, listening on :%s, stats on :%s", self.haproxy.pid,
                 len(table["backends"]), self.args.http_port, self.args.stats_port)

    def master(self, command: str) -> str:
        return cli_command(self.args.master_socket, command)

    def serving(self, new_workers: set[int]) -> bool:
        """True once one of ``new_workers`` answers on the runtime socket."""
        if self.haproxy.poll() is not None:
            raise HaproxyError(f"HAProxy exited with status {self.haproxy.returncode}")
        try:
            return bool(new_workers) and runtime_pid(send_command(self.args.runtime_socket, "show info")) in new_workers
        except RuntimeApiError:
            return False  # the master re-executes itself on reload and briefly refuses connections

    def wait_for_worker(self, timeout=30.0):
        """Wait until the first worker runs and answers on the runtime socket."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.serving(worker_pids(self.master("show proc"))):
                    return
            except HaproxyError:
                if self.haproxy.poll() is not None:
                    raise
            time.sleep(0.05)
        raise HaproxyError(f"no HAProxy worker after {timeout:.0f}s")

    def reload(self, table, why, settings=None):
        """Render, validate and apply ``table`` with a master reload; ``settings`` replace the
        running ones only once the new worker runs."""
        settings = settings or self.settings
        files, table = self.validated(table, settings)
        write_files(self.args.config_dir, files)
        verified_reload(self.master, timeout=30.0, interval=0.05, ready=self.serving)
        if settings is not self.settings:
            self.settings = self.runtime.settings = settings
            log.info("the running config declares %d spare backends", settings.spare_backends)
        self.installed(table)
        self.reloads += 1
        log.info("reloaded HAProxy (%s): %d backends", why, len(table["backends"]))

    def grown_spares(self):
        """Settings with twice the spare backends (up to 32 times the configured number), for the
        reload that follows when new services used them all: a burst of new services costs a few
        reloads, not one per pool."""
        grown = min(self.settings.spare_backends * 2, self.args.spare_backends * SPARE_GROWTH_LIMIT)
        if grown <= self.settings.spare_backends:
            return self.settings
        return dataclasses.replace(self.settings, spare_backends=grown)

    def installed(self, table):
        self.applied = table
        self.state = RunningState.from_table(table, self.settings)
        self.runtime.forget()

    # ---- rendering
    def build(self, instances):
        table = build_routing_table(instances, self.domains)
        for warning in table.get("warnings", []):
            log.warning("%s", warning)
        # A backend HAProxy rejected stays out while its content is the same, without re-validating.
        known_bad = [name for name, backend in table["backends"].items() if self.rejected.get(name) == backend]
        return without_backends(table, known_bad) if known_bad else table

    def validated(self, table, settings=None):
        files, kept, rejected = render_validated(table, settings or self.settings, (self.args.haproxy,))
        for name, service, reason in rejected:
            self.rejected[name] = table["backends"][name]
            log.error("service %r (backend %s) left out: haproxy -c rejects it: %s", service, name, reason)
        return files, kept

    # ---- applying
    def apply(self):
        instances, _unused = fetch_instances(self.consul, checks=self.health_snapshot, known=self.known)
        wanted = self.build(instances)
        table, held, recheck = self.guard.filter(self.applied, wanted, time.monotonic(), self.last_fault)
        self.recheck_at = time.monotonic() + recheck if recheck is not None else None
        if held:
            log.warning("Consul lost %d of %d live services in one step; keeping them until a later read agrees: %s",
                        len(held), len(self.applied["backends"]), ", ".join(sorted(held)[:10]))
        if _comparable(table) == _comparable(self.applied):
            return False
        plan = plan_changes(self.state, table)
        if plan.reload_reason:
            self.reload(table, plan.reload_reason, self.grown_spares() if plan.out_of_spares else None)
            return True
        files = None
        if set(table["backends"]) - set(self.applied["backends"]):
            # New backends are new config sections: validate before anything routes to them.
            files, kept = self.validated(table)
            if kept is not table:
                table, plan = kept, plan_changes(self.state, kept)
        try:
            self.runtime.apply(plan.steps)
        except RuntimeApiError as exc:
            self.reload(table, f"the Runtime API refused a change: {exc}")
            return True
        # Servers only: HAProxy already runs the change; the file follows for the next reload.
        write_files(self.args.config_dir, files or render_haproxy_config(table, self.settings))
        self.applied, self.state = table, plan.state
        self.runtime_updates += 1
        self.last_change = time.monotonic()
        log.info("applied %d Runtime API changes without a reload (%d backends)", len(plan.steps),
                 len(table["backends"]))
        return True

    # ---- Consul watches
    def watch(self, name, query, keep=None):
        """Set ``changed`` whenever a blocking query's index moves; ``keep`` gets each answer, and
        None when a query failed (what it held may be gone with the Consul that answered it)."""
        index = None
        backoff = Backoff(first=0.2, cap=2.0)
        while not self.stopping.is_set():
            try:
                answer = query(index=index, wait=self.args.wait)
            except ConsulError as exc:
                log.warning("watch %s: %s; retrying in %.1fs", name, exc, backoff.peek())
                self.last_fault = time.monotonic()
                index = None
                if keep:
                    keep(None)
                backoff.sleep(self.stopping)
                continue
            backoff.reset()
            new_index = answer[1]
            if keep:
                keep(answer)
            if new_index != index:
                self.changed.set()
            if index is not None and new_index is not None and new_index < index:
                # An index that goes backwards means Consul restarted or lost its state.
                log.warning("watch %s: Consul's index went back from %s to %s", name, index, new_index)
                self.last_fault = time.monotonic()
                new_index = None
            index = new_index

    def keep_health(self, answer):
        self.health_snapshot = answer

    def tick(self):
        """Work that is due without a Consul change: idle servers to delete, held drops to re-read."""
        if self.runtime.draining:
            try:
                self.runtime.retry_removals()
            except RuntimeApiError as exc:
                log.warning("removing drained servers: %s", exc)
        if self.recheck_at is not None and time.monotonic() >= self.recheck_at:
            self.recheck_at = None
            self.changed.set()
        if self.rename_due():
            try:
                self.reload(self.applied, "quiet now: backends on spare slots get their own names")
            except HaproxyError as exc:
                log.warning("reload to rename backends failed, keeping the running configuration: %s", exc)
                self.last_change = time.monotonic()

    def rename_due(self):
        """HAProxy cannot rename a backend at runtime; a reload at a quiet moment can."""
        if self.args.rename_after <= 0 or self.changed.is_set() or self.runtime.draining:
            return False
        if time.monotonic() - self.last_change < self.args.rename_after:
            return False
        return any(running["proxy"] != name for name, running in self.state.backends.items())

    def run(self):
        self.start_haproxy()
        watches = (("catalog", self.consul.catalog_services, None),
                   ("health", self.consul.health_state, self.keep_health))
        for name, query, keep in watches:
            threading.Thread(target=self.watch, args=(name, query, keep), name="watch-" + name, daemon=True).start()
        backoff = Backoff(first=0.2, cap=2.0)
        while not self.stopping.is_set():
            if self.haproxy.poll() is not None:
                log.error("HAProxy exited with status %s", self.haproxy.returncode)
                return 1
            self.tick()
            if not self.changed.wait(timeout=0.1):
                continue
            self.changed.clear()
            try:
                self.apply()
                backoff.reset()
            except (ConsulError, HaproxyError, RuntimeApiError) as exc:
                log.warning("update failed, keeping the running configuration: %s", exc)
                if isinstance(exc, ConsulError):
                    self.last_fault = time.monotonic()
                self.changed.set()
                backoff.sleep(self.stopping)
                continue
            # Leading-edge debounce: the first change went out at once, a burst after it is
            # coalesced into one more apply.
            self.stopping.wait(self.args.debounce)
        return 0

    def stop(self, *_signal):
        self.stopping.set()
        self.changed.set()
        if self.haproxy and self.haproxy.poll() is None:
            self.haproxy.send_signal(signal.SIGUSR1)


def runtime_pid(show_info):
    """The worker PID in the runtime socket's ``show info`` answer, or None."""
    for line in show_info.splitlines():
        key, _sep, value = line.partition(":")
        if key.strip() == "Pid" and value.strip().isdigit():
            return int(value)
    return None


def main(argv):
    args = parse_args(argv)
    agent = ProxyAgent(args)
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    try:
        return agent.run()
    finally:
        # Also when run() failed: never leave the HAProxy it started behind.
        agent.stop()
        if agent.haproxy and agent.haproxy.poll() is None:
            try:
                agent.haproxy.wait(timeout=10)
            except subprocess.TimeoutExpired:
                agent.haproxy.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
