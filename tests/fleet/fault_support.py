# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the fault tests (test_site_faults.py) watch while they break the lab: a request loop
through the edges, each edge's HAProxy server states sampled from its Runtime API, and the lab
hosts' containers stopped, started, cut from the lab network and attached again (the outer
Docker CLI: the fault comes from outside the hosts, as a power cut or a pulled cable would)."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass

import pytest
from fleet_support import HELLO, FleetStack, answered_by, http_get, wait_until

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import DURATION_RE, duration_ms

HAPROXY_CFG = "/etc/haproxy/autoproxy/haproxy.cfg"
HOSTS_MAP = "/etc/haproxy/autoproxy/hosts.map"
SAMPLE_PERIOD = 0.25
# Runs inside an edge's proxy container (python3 is there): every SAMPLE_PERIOD, one line
# "<unix time> <backend>/<address:port>=<status> ..." from HAProxy's `show stat`.
WATCH_SCRIPT = f"SAMPLE_PERIOD = {SAMPLE_PERIOD}\n" + r"""
import csv, io, socket, time
while True:
    s = socket.socket(socket.AF_UNIX)
    s.connect("/run/haproxy/admin.sock")
    s.sendall(b"show stat\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
    out = sorted(r["pxname"] + "/" + r["addr"] + "=" + r["status"].replace(" ", "_") for r in rows
                 if r["svname"] not in ("FRONTEND", "BACKEND") and r.get("addr"))
    print(f"{time.time():.3f} {' '.join(out)}", flush=True)
    time.sleep(SAMPLE_PERIOD)
"""


def haproxy_seconds(text: str) -> float:
    """An HAProxy duration (``2s``, ``500ms``, a bare number of milliseconds) in seconds."""
    if DURATION_RE.fullmatch(text) is None:
        pytest.fail(f"not an HAProxy duration: {text!r}")
    return duration_ms(text) / 1000


@dataclass(frozen=True)
class CheckTiming:
    """HAProxy's own check of the www backend's servers as an edge's rendered config sets it."""

    inter: float
    fall: int
    timeout_connect: float
    timeout_check: float | None
    fastinter: float | None


def check_timing(stack: FleetStack, edge: str) -> CheckTiming:
    """Read the check settings of www.hello.test's backend from the config the proxy role rendered on an edge."""
    fleet = stack.fleet
    backend = dict(line.split() for line in fleet.docker_exec(edge, "autoproxy_proxy", f"cat {HOSTS_MAP}")
                   .splitlines() if line.strip())[HELLO]
    config = fleet.docker_exec(edge, "autoproxy_proxy", f"cat {HAPROXY_CFG}")
    section = re.search(rf"^backend {re.escape(backend)}\n((?:    .*\n)*)", config, re.M)
    defaults = re.search(r"^defaults\n((?:    .*\n)*)", config, re.M)
    if section is None or defaults is None:
        pytest.fail(f"no defaults or backend {backend} in {edge}'s {HAPROXY_CFG}:\n{config}")
    server = re.search(r"^    default-server check (.*)$", section.group(1), re.M)
    words = server.group(1).split() if server else []
    keywords = dict(zip(words[::2], words[1::2]))
    connect = re.search(r"timeout connect (\S+)", defaults.group(1))
    check = re.search(r"timeout check (\S+)", defaults.group(1))
    if "inter" not in keywords or "fall" not in keywords or connect is None:
        pytest.fail(f"no check inter/fall or timeout connect for {backend} in {edge}'s {HAPROXY_CFG}")
    return CheckTiming(inter=haproxy_seconds(keywords["inter"]), fall=int(keywords["fall"]),
                       timeout_connect=haproxy_seconds(connect.group(1)),
                       timeout_check=haproxy_seconds(check.group(1)) if check else None,
                       fastinter=haproxy_seconds(keywords["fastinter"]) if "fastinter" in keywords else None)


@dataclass(frozen=True)
class Answer:
    edge: str
    started: float
    ended: float
    status: int
    hostname: str
    error: str


class RequestLoop:
    """One thread per edge doing GETs of www.hello.test back to back (5 s timeout), each answer kept.

    A thread has at most one request in flight, so a fault can catch at most one per edge in flight.
    """

    def __init__(self, stack: FleetStack, edges: list[str]):
        self.stack = stack
        self.edges = edges
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(edge,), daemon=True) for edge in edges]

    def _run(self, edge: str) -> None:
        while not self._stop.is_set():
            started = time.time()
            status, body = http_get(self.stack.fleet.hosts[edge], HELLO)
            name = answered_by(status, body)
            self.answers.append(Answer(edge, started, time.time(), status, name or "", "" if name else body[:200]))
            # Back to back, but leave the 2 cores some air.
            time.sleep(0.02)

    def __enter__(self) -> RequestLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def failed(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.status != 200 or not answer.hostname]

    def summary(self) -> str:
        slow = [a for a in self.answers if a.ended - a.started > 0.5]
        return (f"{len(self.answers)} requests, {len(self.failed())} failed, {len(slow)} over 0.5 s; "
                f"failed: {[(a.edge, round(a.started, 2), a.status, a.error) for a in self.failed()][:10]}")


class EdgeWatch:
    """Every edge's HAProxy server states, sampled 4 times a second inside its proxy container.

    samples[edge] is a list of (unix time, {"backend/address:port": status}). Host clocks are this
    machine's (the lab hosts are containers), so times compare with time.time() here.
    """

    def __init__(self, stack: FleetStack, edges: list[str]):
        self.stack = stack
        self.samples: dict[str, list[tuple[float, dict[str, str]]]] = {edge: [] for edge in edges}
        self._procs: list[subprocess.Popen[str]] = []
        self._threads: list[threading.Thread] = []

    def _read(self, edge: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            when, *states = line.split()
            self.samples[edge].append((float(when), dict(state.rsplit("=", 1) for state in states)))

    def __enter__(self) -> EdgeWatch:
        for edge in self.samples:
            proc = subprocess.Popen(["ssh", "-F", self.stack.fleet.facts["ssh_config"], "-o", "BatchMode=yes", edge,
                                     "docker exec -i autoproxy_proxy python3 -u -"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                    text=True)
            assert proc.stdin is not None
            proc.stdin.write(WATCH_SCRIPT)
            proc.stdin.close()
            thread = threading.Thread(target=self._read, args=(edge, proc), daemon=True)
            thread.start()
            self._procs.append(proc)
            self._threads.append(thread)
        wait_until("the first HAProxy samples of every edge", lambda: all(self.samples.values()), timeout=30,
                   interval=0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self._procs:
            proc.terminate()
            proc.wait(timeout=10)

    def _between(self, edge: str, since: float, until: float | None) -> list[tuple[float, dict[str, str]]]:
        return [(when, states) for when, states in self.samples[edge]
                if when >= since and (until is None or when < until)]

    def routable(self, edge: str, since: float, address: str,
                 until: float | None = None) -> list[tuple[float, str, str]]:
        """(time, server, status) of every sample in [since, until) where a server at `address`
        (an IP, or IP:port) could take new requests (UP, also while going down, or unchecked)."""
        return [(when, server, status) for when, states in self._between(edge, since, until)
                for server, status in states.items()
                if _at(server, address) and (status.startswith("UP") or status == "no_check")]

    def gone_at(self, edge: str, since: float, address: str, until: float | None = None) -> float | None:
        """Time of the first sample in [since, until) from which on no server at `address` is routable."""
        last = max((when for when, _server, _status in self.routable(edge, since, address, until)), default=None)
        later = [when for when, _states in self._between(edge, since, until) if last is None or when > last]
        return min(later) if later else None


def _at(server: str, address: str) -> bool:
    host_port = server.split("/", 1)[1]
    return host_port == address or host_port.rsplit(":", 1)[0] == address


def lab_docker(*args: str, timeout: float = 120) -> str:
    """The outer Docker CLI on a lab host's container (stop, start, network): the fault itself."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def lab_address(stack: FleetStack, host: str) -> str:
    network = stack.fleet.facts["network"]
    return lab_docker("inspect", "-f", f'{{{{ (index .NetworkSettings.Networks "{network}").IPAddress }}}}', host)


def wait_for_ssh(stack: FleetStack, host: str, timeout: float = 120) -> None:
    config = stack.fleet.facts["ssh_config"]

    def answers() -> bool | str:
        proc = subprocess.run(["ssh", "-F", config, "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", host,
                               "docker version -f '{{.Server.Version}}'"], capture_output=True, text=True,
                              timeout=30, check=False)
        return True if proc.returncode == 0 else proc.stderr.strip()[-200:]

    wait_until(f"sshd and dockerd of {host}", answers, timeout=timeout)


def replica_ports(stack: FleetStack, host: str) -> dict[str, str]:
    """address:published port of each replica of the demo app on a host: {container name: server}."""
    out = {}
    for name in stack.containers(host):
        port = stack.fleet.ssh(host, f"docker port {name} 80/tcp").split()[0].rsplit(":", 1)[1]
        out[name] = f"{stack.fleet.hosts[host]}:{port}"
    return out
