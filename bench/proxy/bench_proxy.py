# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Proxy agent benchmark: this agent vs the seed's mechanism, side by side in one run.

Both modes run on this host with the host's HAProxy, a real Consul (container) and real HTTP
backends (one asyncio process of their own, each answering with its port):

* ``agent``: agents/proxy.py as it runs in the image (Runtime API, spare backends, reloads only
  when needed).
* ``seed``: consul-template's way, rebuilt here: on a catalog change wait for 2 s of quiescence
  (at most 10 s), render the whole config, restart HAProxy with ``-sf`` (no validation).
* ``none``: the agent's HAProxy with no catalog change during the load at all: the baseline
  for the request rate during the churn.
* ``frozen``: the same churn in Consul as ``agent``, with the agent stopped (SIGSTOP) once its
  HAProxy routes the load, so nothing changes in HAProxy: what the churn itself (this harness
  and Consul, on the same cores) costs the request rate, apart from the agent.
* ``direct``: ``frozen``, and the harness itself sends each change to the agent's HAProxy with the
  agent's Runtime API steps: what the changes cost HAProxy and the backends without the agent.
* ``direct-slots``: ``direct`` with pre-declared server slots changed by ``set server`` instead of
  ``add server`` and ``del server``.

Measured per mode: instance passing in Consul -> first 2xx routed to it (new instance of a
service, and a new service), failed requests under wrk load (keep-alive and new connections)
across membership changes and new services, reloads; for the agent also its CPU seconds per
1,000 changes (its own and its finished children's, i.e. ``haproxy -c``), RSS and idle CPU. Then
render + validate + apply at 1,000 services x 5 instances.

    python3 bench/proxy/bench_proxy.py [--modes none,agent,seed,frozen,direct,direct-slots] [--changes 1000]
        [--new-services 50] [--probes 20] [--agent-tree DIR]

``--churn-service other`` makes the instances come and go in a service that takes no load, so
the request rate shows what applying the changes costs the traffic of other services.
``--agent-tree`` runs the agent (modes agent, none, frozen) from another checkout of this
repository, e.g. a ``git worktree`` of an older commit, so both sides of a before/after pair
run under this harness in one session; the 1,000 x 5 step always measures this tree's code.

Needs docker, haproxy and wrk on the host. Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.autoproxy.stack.agents._haproxy_backend import (  # noqa: E402
    RELOAD_POLL,
    RELOAD_TIMEOUT,
    new_worker_serves,
)
from ansible_collections.autoproxy.stack.agents.proxy import parse_args as parse_proxy_args  # noqa: E402
from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, ConsulError  # noqa: E402
from ansible_collections.autoproxy.stack.plugins.module_utils._consul_catalog import fetch_instances  # noqa: E402
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import (  # noqa: E402
    cli_command,
    render_validated,
    write_files,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (  # noqa: E402
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_master import verified_reload  # noqa: E402
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_runtime import (  # noqa: E402
    AddServer,
    RemoveServer,
    RunningState,
    RuntimeApi,
    plan_changes,
    send_command,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._proxy_settings import haproxy_settings  # noqa: E402
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import (  # noqa: E402
    RoutingTableBuilder,
    build_routing_table,
    server_name,
)

LABEL = "autoproxy.stack.bench=proxy"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _answer(reader, writer):
    """HTTP/1.1 keep-alive backend answering ``port <its port>``; asyncio, so one thread serves
    every backend at a few thousand requests per second (threaded http.server managed ~500)."""
    body = f"port {writer.get_extra_info('sockname')[1]}\n".encode()
    response = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" % len(body)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            close = b"connection: close" in head.lower()
            writer.write(response + (b"Connection: close\r\n\r\n" if close else b"\r\n") + body)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve_backends(count, ports_out):
    async def main():
        servers = [await asyncio.start_server(_answer, "127.0.0.1", 0, backlog=512) for _unused in range(count)]
        ports_out.send([server.sockets[0].getsockname()[1] for server in servers])
        await asyncio.Event().wait()

    asyncio.run(main())


def start_backends(count):
    """``count`` backends in a process of their own: the harness's churn (Consul writes, probes)
    must not take the interpreter lock from the backends serving the load, or the churn alone
    lowers the request rate (in one thread with them, the churn of ``frozen`` cost 9 %)."""
    ports_in, ports_out = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(target=_serve_backends, args=(count, ports_out),
                                                          name="bench-backends", daemon=True)
    process.start()
    if not ports_in.poll(30):
        raise RuntimeError("the backends did not start")
    return ports_in.recv()


class Consul:
    def __init__(self):
        self.port = free_port()
        # Unique per run: other runs of this bench may share the Docker engine.
        self.name = f"apbench-proxy-consul-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.id = subprocess.run(["docker", "run", "-d", "--name", self.name, "--label", LABEL, "--label",
                                  "SERVICE_IGNORE=true", "-p", f"127.0.0.1:{self.port}:8500", "autoproxy/consul:1.8.7",
                                  "agent", "-dev", "-client=0.0.0.0"],
                                 check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
        self.url = f"http://127.0.0.1:{self.port}"
        # Kept-alive connections: the harness's own share of the CPU during the churn stays small.
        self.client = ConsulClient(self.url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.get("/v1/status/leader"):
                    return
            except ConsulError:
                pass
            time.sleep(0.2)
        raise RuntimeError("Consul did not start")

    def get(self, path):
        return self.client.request("GET", path)[0]

    def put(self, path, body=None):
        self.client.request("PUT", path, body=body)

    def register(self, service, iid, port, tags=(), status="passing"):
        self.put("/v1/agent/service/register", {"ID": iid, "Name": service, "Tags": list(tags), "Address": "127.0.0.1",
                                                "Port": port, "Check": {"CheckID": "c-" + iid, "TTL": "3600s",
                                                                        "Status": status}})

    def deregister(self, iid):
        self.put(f"/v1/agent/service/deregister/{iid}")

    def clear(self):
        for iid in self.get("/v1/agent/services"):
            self.deregister(iid)

    def stop(self):
        subprocess.run(["docker", "rm", "-f", "-v", self.name], stdout=subprocess.DEVNULL, check=False)

    def cpu_seconds(self):
        """CPU seconds the container has used (its cgroup, v1 or v2 with the cgroupfs driver); None if unknown."""
        for path, scale in ((f"/sys/fs/cgroup/cpuacct/docker/{self.id}/cpuacct.usage", 1e-9),
                            (f"/sys/fs/cgroup/docker/{self.id}/cpu.stat", 1e-6)):
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(path) as handle:
                    text = handle.read()
                return int(text.split()[1] if "usage_usec" in text else text) * scale
        return None


class AgentMode:
    """agents/proxy.py as a subprocess with the host's HAProxy."""

    name = "agent"
    churn = True

    def __init__(self, consul, workdir, http_port, tree=ROOT):
        self.dir = workdir
        self.http_port = http_port
        env = dict(os.environ, PYTHONPATH=collections_path(tree, workdir), AUTOPROXY_LOG_LEVEL="WARNING",
                   PYTHONFAULTHANDLER="1")
        self.log = open(f"{workdir}/agent.log", "w")  # noqa: SIM115 (closed in stop())
        self.options = ["--consul", consul.url, "--domains", "test", f"--http-port={http_port}",
                        f"--stats-port={free_port()}", f"--config-dir={workdir}/cfg",
                        f"--master-socket={workdir}/master.sock", f"--runtime-socket={workdir}/admin.sock",
                        "--debounce=0.05", "--rename-after=0"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ansible_collections.autoproxy.stack.agents", "proxy", *self.options],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log)

    def reloads(self):
        answer = send_command(f"{self.dir}/master.sock", "show proc")
        return int([line.split() for line in answer.splitlines() if " master " in line][0][2])

    def stop(self):
        self.proc.terminate()
        try:
            # The agent soft-stops HAProxy (10 s at most) and writes what is pending: on a loaded
            # machine that has taken more than 20 s.
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(6)  # SIGABRT: faulthandler writes every thread's stack to agent.log
            self.proc.wait(timeout=30)
            print(f"the agent did not stop within 60 s; its stacks are in {self.dir}/agent.log", flush=True)
        self.log.close()

    def freeze(self):
        """Nothing to do while the catalog changes: see FrozenMode."""

    def churned(self, service, added, removed):
        """One change of the churn made in Consul: ``added`` (id, port) and ``removed`` id or None."""


class NoChangeMode(AgentMode):
    """The agent's HAProxy serving the same load while the catalog does not change at all."""

    name = "none"
    churn = False


class FrozenMode(AgentMode):
    """The agent's HAProxy serving the same load while the catalog changes as for ``agent``, with
    the agent stopped: its HAProxy (a child process, not stopped) runs what it had."""

    name = "frozen"

    def freeze(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def stop(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        super().stop()


class DirectMode(FrozenMode):
    """``frozen``, and the harness applies each change of the churn to the stopped agent's HAProxy
    itself, with the agent's own Runtime API steps (AddServer, then RemoveServer and the
    deletion of drained servers): what the changes cost HAProxy, the backends and the load, without
    the agent's and Consul's work for them. New services are left out (they need spare backends
    and the map). The churned service's backend is the one HAProxy routes ``<service>.test`` to
    (a spare for ``--churn-service other``, defined by its anchor before the agent stopped)."""

    name = "direct"

    def __init__(self, consul, workdir, http_port, tree=ROOT):
        super().__init__(consul, workdir, http_port, tree)
        self.settings = haproxy_settings(parse_proxy_args(self.options))
        self.api = RuntimeApi(f"{workdir}/admin.sock", self.settings)
        self.proxies = {}

    def proxy(self, service):
        if service not in self.proxies:
            answer = send_command(f"{self.dir}/admin.sock", f"show map {self.settings.map_file}")
            routes = dict(line.split()[1:3] for line in answer.splitlines() if len(line.split()) == 3)
            self.proxies[service] = routes[f"{service}.test"]
        return self.proxies[service]

    def churned(self, service, added, removed):
        steps = []
        if added is not None:
            steps.append(AddServer(self.proxy(service), {"name": server_name(added[0], "bench"), "id": added[0],
                                                         "address": "127.0.0.1", "port": added[1]}, {}))
        if removed is not None:
            steps.append(RemoveServer(self.proxy(service), server_name(removed, "bench")))
        self.api.apply(steps)
        self.api.retry_removals()


class DirectSlotsMode(DirectMode):
    """``direct`` with pre-declared server slots instead of ``add server``/``del server``: each new
    instance takes the next of 4 slots (``set server addr``, ``set server health up``, ``state
    ready``), each removed one puts its slot in maintenance. In HAProxy 2.6 ``add server`` and
    ``del server`` run under thread isolation, these commands do not: the rate of this mode
    against ``direct`` is what slots would gain. The slots are added at the first change."""

    name = "direct-slots"
    SLOTS = 4

    def __init__(self, consul, workdir, http_port, tree=ROOT):
        super().__init__(consul, workdir, http_port, tree)
        self.slot_of = {}
        self.next_slot = 0

    def churned(self, service, added, removed):
        proxy = self.proxy(service)
        with self.api.batch():
            if self.next_slot == 0:
                for slot in range(self.SLOTS):
                    self.api.apply([AddServer(proxy, {"name": f"slot{slot}", "id": f"slot{slot}",
                                                      "address": "127.0.0.1", "port": added[1]}, {})])
                    self.set_server(proxy, f"slot{slot}", "state", "maint")
            if added is not None:
                slot = f"slot{self.next_slot % self.SLOTS}"
                self.next_slot += 1
                self.slot_of[added[0]] = slot
                self.set_server(proxy, slot, "addr", "127.0.0.1", "port", added[1],
                                answer_ok=lambda answer: "changed" in answer or "no need" in answer)
                self.set_server(proxy, slot, "health", "up")
                self.set_server(proxy, slot, "state", "ready")
            if removed is not None:
                self.set_server(proxy, self.slot_of.pop(removed), "state", "maint")

    def set_server(self, proxy, slot, *words, answer_ok=lambda answer: answer == ""):
        """``set server <proxy>/<slot> <words>``; RuntimeApiError unless HAProxy's answer is ``answer_ok``."""
        self.api.expect(answer_ok, "set", "server", f"{proxy}/{slot}", *words)


def collections_path(tree, workdir):
    """A directory holding ansible_collections/autoproxy/stack -> ``tree``."""
    if os.path.isdir(os.path.join(tree, ".collections", "ansible_collections")):
        return os.path.join(tree, ".collections")
    path = os.path.join(workdir, "collections")
    os.makedirs(os.path.join(path, "ansible_collections", "autoproxy"))
    os.symlink(os.path.abspath(tree), os.path.join(path, "ansible_collections", "autoproxy", "stack"))
    return path


class SeedMode:
    """consul-template + ``haproxy -sf``: full render after 2 s of quiescence (10 s at most)."""

    name = "seed"
    churn = True

    def __init__(self, consul, workdir, http_port):
        self.consul = ConsulClient(consul.url)
        self.dir = workdir
        self.settings = HaproxySettings(http_port=http_port, stats_port=free_port(), idle_close_on_response=False,
                                        retries=0, runtime_socket=f"{workdir}/admin.sock")
        self.restarts = 0
        self.stopping = threading.Event()
        self.render_and_restart()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def render_and_restart(self):
        table = build_routing_table(fetch_instances(self.consul)[0], ["test"])
        write_files(f"{self.dir}/cfg", render_haproxy_config(table, self.settings))
        cmd = ["haproxy", "-D", "-p", f"{self.dir}/pid", "-f", f"{self.dir}/cfg/haproxy.cfg"]
        if os.path.exists(f"{self.dir}/pid"):
            cmd += ["-sf"] + self.pids()
            self.restarts += 1
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)

    def loop(self):
        index = None
        while not self.stopping.is_set():
            _unused, index = self.consul.health_state(index=index, wait=5)
            first = last = time.monotonic()
            while time.monotonic() - last < 2.0 and time.monotonic() - first < 10.0 and not self.stopping.is_set():
                _unused, new = self.consul.health_state(index=index, wait=1)
                if new != index:
                    index, last = new, time.monotonic()
            if not self.stopping.is_set():
                self.render_and_restart()

    def reloads(self):
        return self.restarts

    def churned(self, service, added, removed):
        """The catalog watch sees the churn."""

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=15)
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 15)

    def pids(self):
        with open(f"{self.dir}/pid") as handle:
            return handle.read().split()


def routed_port(http_port, host):
    req = urllib.request.Request(f"http://127.0.0.1:{http_port}/", headers={"Host": host, "Connection": "close"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            match = re.search(rb"port (\d+)", resp.read())
            return int(match.group(1)) if resp.status == 200 and match else None
    except (urllib.error.URLError, OSError):
        return None


def time_to_route(consul, http_port, service, iid, port, host, timeout=30.0):
    consul.register(service, iid, port)
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if routed_port(http_port, host) == port:
            return time.monotonic() - start
        time.sleep(0.005)
    return float("inf")


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def wrk(http_port, seconds, close, connections):
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", "Host: load.test", f"http://127.0.0.1:{http_port}/"]
    if close:
        cmd[1:1] = ["-H", "Connection: close"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def wrk_result(proc):
    out = proc.communicate()[0]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
    return total, errors + non2xx


def run_mode(mode_cls, consul, ports, args):
    consul.clear()
    base = ports[:3]
    for i, port in enumerate(base):
        consul.register("load", f"load-{i}", port)
    workdir = tempfile.mkdtemp(prefix=f"apbench-{mode_cls.name}-")
    http_port = free_port()
    mode = mode_cls(consul, workdir, http_port, args.agent_tree) if issubclass(mode_cls, AgentMode) \
        else mode_cls(consul, workdir, http_port)
    result = {"mode": mode_cls.name}
    try:
        deadline = time.monotonic() + 30
        while routed_port(http_port, "load.test") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        spare = ports[3:]
        # Latency: a new instance of an existing service, then a new service.
        joins, news = [], []
        # A critical instance keeps the service's backend defined while probes come and go.
        consul.register("member", "m-anchor", spare[-1], status="critical")
        if args.churn_service != "load":
            # The same for the churned service: its backend exists before the load, in every mode.
            consul.register(args.churn_service, "churn-anchor", spare[-1], status="critical")
        time.sleep(3)
        for i in range(args.probes):
            joins.append(time_to_route(consul, http_port, "member", f"m-{i}", spare[i % len(spare)], "member.test"))
            consul.deregister(f"m-{i}")
            news.append(time_to_route(consul, http_port, f"new{i}", f"n-{i}", spare[(i + 1) % len(spare)],
                                      f"new{i}.test"))
            time.sleep(args.probe_gap)
        result["join_p50"], result["join_p95"] = pct(joins, 0.5), pct(joins, 0.95)
        result["new_p50"], result["new_p95"] = pct(news, 0.5), pct(news, 0.95)
        # Failed requests under load across membership changes and new services.
        reloads_before = mode.reloads()
        duration = int(args.changes * args.change_every + 5)
        keep = wrk(http_port, duration, False, args.connections)
        close = wrk(http_port, duration, True, args.connections)
        time.sleep(1)
        extra = spare[5:]
        agent_pid = mode.proc.pid if mode_cls is AgentMode else None
        if isinstance(mode, AgentMode):
            mode.freeze()
        cpu_before = cpu_seconds(agent_pid) if agent_pid else 0.0
        consul_before = consul.cpu_seconds()
        changes_started = time.monotonic()
        for change in range(args.changes if mode.churn else 0):
            port = extra[change % len(extra)]
            iid = f"load-x{change}"
            consul.register(args.churn_service, iid, port)
            if change >= 2:
                consul.deregister(f"load-x{change - 2}")
            mode.churned(args.churn_service, (iid, port), f"load-x{change - 2}" if change >= 2 else None)
            if args.new_services and change % max(1, args.changes // args.new_services) == 0:
                consul.register(f"svc{change}", f"s-{change}", extra[(change + 1) % len(extra)])
            time.sleep(args.change_every)
        if not mode.churn:
            time.sleep(args.changes * args.change_every)
        changes_took = time.monotonic() - changes_started
        consul_after = consul.cpu_seconds()
        if consul_before is not None and consul_after is not None and mode.churn:
            # Consul's share: the harness's writes, and for the agent its watches' answers and reads.
            result["consul_cpu_seconds_per_1000_changes"] = round((consul_after - consul_before) * 1000
                                                                  / max(1, args.changes), 2)
        if agent_pid and mode.churn:
            # Sampled once the changes stop: what the agent spent applying them, per 1,000.
            time.sleep(1)
            spent = cpu_seconds(agent_pid) - cpu_before
            result["agent_cpu_seconds_per_1000_changes"] = round(spent * 1000 / max(1, args.changes), 2)
        keep_total, keep_failed = wrk_result(keep)
        close_total, close_failed = wrk_result(close)
        result.update(requests_per_second=round((keep_total + close_total) / duration),
                      changes_seconds=round(changes_took, 1), keepalive_requests=keep_total,
                      keepalive_failed=keep_failed, close_requests=close_total,
                      close_failed=close_failed, seconds=duration, reloads=mode.reloads() - reloads_before)
        if mode_cls is AgentMode:
            time.sleep(3)
            result.update(agent_resources(mode.proc.pid))
    finally:
        mode.stop()
    return result


def cpu_seconds(pid):
    """CPU seconds of a process and of its children it has waited for (utime, stime, cutime, cstime)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def agent_resources(pid, seconds=10):
    def ticks():
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    before = ticks()
    time.sleep(seconds)
    cpu = (ticks() - before) / os.sysconf("SC_CLK_TCK") / seconds * 100
    with open(f"/proc/{pid}/status") as handle:
        rss = int(re.search(r"VmRSS:\s+(\d+)", handle.read()).group(1)) / 1024
    return {"agent_rss_mb": round(rss, 1), "agent_idle_cpu_percent": round(cpu, 2)}


def scale(services, per_service):
    """render + validate + apply (reload, and a Runtime API change) at services x instances.

    ``build_ms`` is a first build (build_routing_table()); the reload and Runtime API cycles
    build as the agent does, with a RoutingTableBuilder that met the instances before
    (``build_again_ms``: such a build alone).

    Two reload cycles, each build + render + haproxy -c + write + master reload until the new
    worker answers: ``full_reload_cycle_ms`` checks every backend (the agent's first start, or
    new settings); ``change_reload_cycle_ms`` follows one service's option change (balance),
    where, as in the agent, haproxy -c checks only the backends the last validation did not
    accept as they are.
    """
    instances = [{"service": f"svc{s:04d}", "id": f"svc{s:04d}-{i}", "node": "n1", "port": 8080, "tags": ["bench"],
                  "address": f"10.{s // 250}.{s % 250}.{i + 1}", "passing": True}
                 for s in range(services) for i in range(per_service)]
    workdir = tempfile.mkdtemp(prefix="apbench-scale-")
    settings = HaproxySettings(http_port=free_port(), stats_port=free_port(), runtime_socket=f"{workdir}/admin.sock",
                               spare_backends=20, check_interval="60s")
    out = {}
    started = time.monotonic()
    table = build_routing_table(instances, ["test"])
    out["build_ms"] = (time.monotonic() - started) * 1000
    # The agent builds with one RoutingTableBuilder for its whole life: by the time a change
    # needs a reload, its builder has met nearly every instance. Built once here, as at its start.
    builder = RoutingTableBuilder()
    builder.build(instances, ["test"])
    started = time.monotonic()
    builder.build(instances, ["test"])
    out["build_again_ms"] = (time.monotonic() - started) * 1000
    started = time.monotonic()
    files, table, _unused = render_validated(table, settings)
    out["render_validate_ms"] = (time.monotonic() - started) * 1000
    write_files(f"{workdir}/cfg", files)
    proc = subprocess.Popen(["haproxy", "-W", "-S", f"{workdir}/master.sock", "-f", f"{workdir}/cfg/haproxy.cfg"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(settings.runtime_socket):
            time.sleep(0.05)
        time.sleep(0.5)

        def reload_cycle(instances, accepted):
            started = time.monotonic()
            files, table, _unused = render_validated(builder.build(instances, ["test"]), settings, accepted=accepted)
            write_files(f"{workdir}/cfg", files)
            # The agent's own reload: its master CLI reads, their pace, and its wait for the new worker.
            verified_reload(lambda command: cli_command(f"{workdir}/master.sock", command), timeout=RELOAD_TIMEOUT,
                            interval=RELOAD_POLL, ready=lambda new: new_worker_serves(settings.runtime_socket, new))
            return table, (time.monotonic() - started) * 1000

        table, out["full_reload_cycle_ms"] = reload_cycle(instances, None)
        changed = [dict(instance, tags=["bench", "balance=leastconn"]) if instance["service"] == "svc0000" else instance
                   for instance in instances]
        table, out["change_reload_cycle_ms"] = reload_cycle(changed, table["backends"])
        if table["backends"]["bench_svc0000_backend"]["options"].get("balance") != "leastconn":
            raise RuntimeError("scale: the changed option is not in the reloaded table")
        # Runtime path: one instance more, build + plan + apply + render + write.
        state = RunningState.from_table(table, settings)
        api = RuntimeApi(settings.runtime_socket, settings)
        more = changed + [dict(changed[0], id="extra", address="10.99.0.1")]
        started = time.monotonic()
        new = builder.build(more, ["test"])
        plan = plan_changes(state, new)
        api.apply(plan.steps)
        write_files(f"{workdir}/cfg", render_haproxy_config(new, settings))
        out["runtime_change_cycle_ms"] = (time.monotonic() - started) * 1000
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {key: round(value, 1) for key, value in out.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--new-services", type=int, default=50)
    parser.add_argument("--connections", type=int, default=4, help="wrk connections per load (two loads)")
    parser.add_argument("--change-every", type=float, default=0.1)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--probe-gap", type=float, default=0.3)
    parser.add_argument("--modes", default="none,agent,seed")
    parser.add_argument("--churn-service", default="load",
                        help="service whose instances come and go during the load (default: the one under load)")
    parser.add_argument("--agent-tree", default=ROOT, help="checkout whose agents/proxy.py runs (default: this one)")
    args = parser.parse_args()
    ports = start_backends(40)
    consul = Consul()
    results = []
    try:
        for name in args.modes.split(","):
            modes = {"agent": AgentMode, "none": NoChangeMode, "seed": SeedMode, "frozen": FrozenMode,
                     "direct": DirectMode, "direct-slots": DirectSlotsMode}
            results.append(run_mode(modes[name], consul, ports, args))
            print(json.dumps(results[-1]), flush=True)
    finally:
        consul.stop()
    print(json.dumps({"scale_1000x5": scale(1000, 5)}), flush=True)


if __name__ == "__main__":
    main()
