# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The proxy agent: Consul catalog -> routing table -> validated haproxy.cfg -> HAProxy.

It runs HAProxy itself in master-worker mode, watches Consul with blocking queries, and on
every change renders the whole configuration, validates it with ``haproxy -c`` and applies
it with a master CLI reload. A render that fails validation is logged and never applied.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading

from ansible_collections.autoproxy.stack.agents._common import Backoff, env_default, split_list
from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, ConsulError
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import (
    CONFIG_NAME,
    HaproxyError,
    master_command,
    validate_files,
    write_files,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table

log = logging.getLogger("autoproxy.proxy")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="autoproxy-agent proxy", description=__doc__)
    parser.add_argument("--consul", default=env_default("CONSUL_HTTP_ADDR", "http://127.0.0.1:8500"),
                        help="Consul HTTP API URL")
    parser.add_argument("--consul-token", default=os.environ.get("CONSUL_HTTP_TOKEN"))
    parser.add_argument("--domains", default=env_default("HAPROXY_DOMAIN", "127.0.0.1.nip.io:test"),
                        help="':'-separated domains every host also answers under (the seed's HAPROXY_DOMAIN)")
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--stats-port", type=int, default=1936)
    parser.add_argument("--stats-user", default=os.environ.get("AUTOPROXY_STATS_USER"))
    parser.add_argument("--stats-password", default=os.environ.get("AUTOPROXY_STATS_PASSWORD"))
    parser.add_argument("--config-dir", default="/etc/haproxy/autoproxy")
    parser.add_argument("--master-socket", default="/run/haproxy/master.sock")
    parser.add_argument("--haproxy", default="haproxy", help="HAProxy binary")
    parser.add_argument("--debounce", type=float, default=0.2,
                        help="seconds to coalesce further changes after one is applied")
    parser.add_argument("--access-log", action="store_true", help="log every request to stdout")
    parser.add_argument("--wait", type=int, default=55, help="blocking query wait, seconds")
    return parser.parse_args(argv)


class ProxyAgent:
    def __init__(self, args):
        self.args = args
        self.consul = ConsulClient(args.consul, token=args.consul_token)
        self.domains = split_list(args.domains, ":")
        self.settings = HaproxySettings(
            http_port=args.http_port,
            stats_port=args.stats_port,
            stats_user=args.stats_user or None,
            stats_password=args.stats_password or None,
            log_stdout=args.access_log,
        )
        self.changed = threading.Event()
        self.stopping = threading.Event()
        self.haproxy = None
        self.applied = None

    # ---- HAProxy process
    def start_haproxy(self):
        os.makedirs(os.path.dirname(self.args.master_socket), exist_ok=True)
        files = self.render([])
        ok, output = validate_files(files, (self.args.haproxy,))
        if not ok:
            raise HaproxyError(f"the empty configuration does not validate: {output}")
        write_files(self.args.config_dir, files)
        self.applied = files
        cfg = os.path.join(self.args.config_dir, CONFIG_NAME)
        self.haproxy = subprocess.Popen([self.args.haproxy, "-W", "-S", self.args.master_socket + ",level,admin",
                                         "-f", cfg])
        log.info("HAProxy started (pid %s), listening on :%s, stats on :%s", self.haproxy.pid,
                 self.args.http_port, self.args.stats_port)

    def reload_haproxy(self):
        answer = master_command(self.args.master_socket, "reload")
        log.debug("master CLI reload: %s", answer.strip())

    # ---- rendering
    def render(self, instances):
        table = build_routing_table(instances, self.domains)
        for warning in table.get("warnings", []):
            log.warning("%s", warning)
        return render_haproxy_config(table, self.settings)

    def apply(self):
        instances = self.consul.instances()
        files = self.render(instances)
        if files == self.applied:
            return False
        ok, output = validate_files(files, (self.args.haproxy,))
        if not ok:
            # Keep serving the running configuration; the log names what HAProxy refused.
            log.error("rendered configuration rejected by haproxy -c, keeping the running one: %s", output)
            return False
        write_files(self.args.config_dir, files)
        self.reload_haproxy()
        self.applied = files
        passing = sum(1 for i in instances if i["passing"])
        log.info("applied: %d instances (%d passing), reloaded HAProxy", len(instances), passing)
        return True

    # ---- Consul watches
    def watch(self, name, query):
        index = None
        backoff = Backoff()
        while not self.stopping.is_set():
            try:
                _, new_index = query(index=index, wait=self.args.wait)
            except ConsulError as exc:
                log.warning("watch %s: %s; retrying in %.1fs", name, exc, backoff.peek())
                index = None
                backoff.sleep(self.stopping)
                continue
            backoff.reset()
            if new_index != index:
                self.changed.set()
            # An index that goes backwards means Consul restarted or lost its state: start over.
            index = new_index if new_index and (index is None or new_index >= index) else None

    def run(self):
        self.start_haproxy()
        for name, query in (("catalog", self.consul.catalog_services), ("health", self.consul.health_state)):
            threading.Thread(target=self.watch, args=(name, query), name="watch-" + name, daemon=True).start()
        backoff = Backoff()
        while not self.stopping.is_set():
            if self.haproxy.poll() is not None:
                log.error("HAProxy exited with status %s", self.haproxy.returncode)
                return 1
            if not self.changed.wait(timeout=1.0):
                continue
            self.changed.clear()
            try:
                self.apply()
                backoff.reset()
            except (ConsulError, HaproxyError) as exc:
                log.warning("update failed, keeping the running configuration: %s", exc)
                self.changed.set()
                backoff.sleep(self.stopping)
                continue
            # Leading-edge debounce: the first change went out at once, a burst after it is
            # coalesced into one more apply.
            self.stopping.wait(self.args.debounce)
        return 0

    def stop(self, *_):
        self.stopping.set()
        self.changed.set()
        if self.haproxy and self.haproxy.poll() is None:
            self.haproxy.send_signal(signal.SIGUSR1)


def main(argv):
    args = parse_args(argv)
    agent = ProxyAgent(args)
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    status = agent.run()
    if agent.haproxy and agent.haproxy.poll() is None:
        try:
            agent.haproxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            agent.haproxy.kill()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
