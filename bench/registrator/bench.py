# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Registrator agent benchmark (not part of CI). Real Docker engine, real Consul, real proxy agent.

    .venv/bin/python bench/registrator/bench.py [--image autoproxy/agent:test] [--containers 100] [--rate 12]

1. Creates --containers app containers, then starts them at --rate per second; Docker ``start`` event
   time -> the service's first appearance in the Consul agent (polled every --poll seconds, 5 ms):
   p50/p95/p99, beside the harness's own inspect of each container from the same event.
2. Starts --routed containers with an HTTP check (5 s interval), half managed by an agent that probes
   (the default) and half by one with --probe-interval 0 (plain Consul check scheduling), each under
   its own host name: time from the app's first 2xx (polled from this host) to the first 2xx routed
   through the proxy, p50/p95 per group.
3. Agent RSS and CPU while idle with everything registered, and the time to restore every
   registration after Consul restarts empty.

With ``--churn N`` it runs only this instead (issue 10): for each ``--churn-images`` image in turn,
in the same run and against the same Consul, one registrator agent while N idle containers whose
TCP check never passes (so every one of them is probed, for 20 s) are created, started, and removed
with ``docker rm -f``; the agent's thread count and RSS are sampled every 0.5 s, and reported per
phase at their peak and at the phase's end.

    .venv/bin/python bench/registrator/bench.py --churn 500 --churn-images OLD,NEW
Everything it creates carries the label autoproxy.bench=<run> and is removed at the end.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import socket
import statistics
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import docker as docker_sdk

RUN = uuid.uuid4().hex[:6]
LABEL = f"autoproxy.bench={RUN}"


def docker(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=900)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str, host: str | None = None, timeout: float = 1.0) -> tuple[int | None, bytes]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (OSError, ValueError):
        return None, b""


def percentiles(values: Iterable[float]) -> str:
    ordered = sorted(values)
    if not ordered:
        return "n/a"

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return (f"n={len(ordered)} p50={pick(0.5) * 1000:.0f} ms p95={pick(0.95) * 1000:.0f} ms "
            f"p99={pick(0.99) * 1000:.0f} ms max={ordered[-1] * 1000:.0f} ms")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.net = f"apbench-{RUN}"
        self.consul_port = free_port()
        self.proxy_port = free_port()
        self.consul_url = f"http://127.0.0.1:{self.consul_port}"

    def name(self, stem: str) -> str:
        return f"apbench-{RUN}-{stem}"

    def run(self, stem: str, image: str, *args: str, env: Mapping[str, str] | None = None,
            labels: Mapping[str, str] | None = None, options: Iterable[str] = (),
            verb: Iterable[str] = ("run", "-d")) -> str:
        cmd = [*verb, "--name", self.name(stem), "--label", LABEL, "--network", self.net]
        for key, value in (env or {}).items():
            cmd += ["-e", f"{key}={value}"]
        for key, value in (labels or {}).items():
            cmd += ["--label", f"{key}={value}"]
        docker(*cmd, *options, image, *args)
        return self.name(stem)

    def consul(self, path: str) -> Any:
        with urllib.request.urlopen(self.consul_url + path, timeout=5) as resp:
            return json.loads(resp.read())

    def wait(self, what: str, probe: Callable[[], object], timeout: float = 120, interval: float = 0.05) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if probe():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(interval)
        raise RuntimeError(f"timed out waiting for {what}")

    # ---- set-up
    def setup(self) -> None:
        docker("network", "create", "--label", LABEL, self.net)
        # CPU weight of the stack's own containers against the apps' (Docker's default is 1024).
        shares = ("--cpu-shares", str(self.args.cpu_shares))
        self.run("consul", self.args.consul_image, "agent", "-dev", "-client=0.0.0.0", labels={"SERVICE_IGNORE": "1"},
                 options=("-p", f"127.0.0.1:{self.consul_port}:8500", "--network-alias", "consul", *shares))
        self.wait("Consul", lambda: self.consul("/v1/status/leader"))
        sock = ("-v", "/var/run/docker.sock:/var/run/docker.sock", *shares)
        for stem, extra in (("reg", ()), ("regplain", ("--probe-interval=0",))):
            self.run(stem, self.args.image, "registrator", "--consul=http://consul:8500", "--internal",
                     f"--hostname={stem}", f"--filter-label=apbench.agent={RUN}-{stem}", *extra,
                     labels={"SERVICE_IGNORE": "1"}, options=sock)
        self.run("proxy", self.args.image, "proxy", "--consul=http://consul:8500", "--http-port=8080",
                 "--domains=test", labels={"SERVICE_IGNORE": "1"},
                 options=("-p", f"127.0.0.1:{self.proxy_port}:8080", *shares))

    def cleanup(self) -> None:
        ids = docker("ps", "-aq", "--filter", f"label={LABEL}", check=False).split()
        for start in range(0, len(ids), 20):
            docker("rm", "-f", *ids[start:start + 20], check=False)
        docker("network", "rm", self.net, check=False)

    # ---- 1: event -> registration
    def registration_latency(self) -> tuple[list[str], float, list[float], list[float]]:
        seen: dict[str, float] = {}
        events: dict[str, float] = {}
        inspected: dict[str, float] = {}
        stop = threading.Event()
        proc = subprocess.Popen(["docker", "events", "--format", "{{json .}}", "--filter", "event=start",
                                 "--filter", f"label=apbench.agent={RUN}-reg"], stdout=subprocess.PIPE, text=True)
        engine = docker_sdk.from_env(timeout=60)

        def inspect_now(name: str) -> None:
            # What the agent must do first for each event: read the container from the engine.
            engine.api.inspect_container(name)
            inspected[name] = time.time()

        def read_events() -> None:
            with concurrent.futures.ThreadPoolExecutor(8) as inspectors:
                for line in proc.stdout or ():
                    event = json.loads(line)
                    name = event["Actor"]["Attributes"]["name"]
                    events[name] = event["timeNano"] / 1e9
                    inspectors.submit(inspect_now, name)

        def poll_consul() -> None:
            while not stop.is_set():
                now = time.time()
                try:
                    for svc in self.consul("/v1/agent/services").values():
                        seen.setdefault(svc["Meta"].get("autoproxy_container"), now)
                except OSError:
                    pass
                time.sleep(self.args.poll)

        threading.Thread(target=read_events, daemon=True).start()
        poller = threading.Thread(target=poll_consul, daemon=True)
        poller.start()
        time.sleep(0.5)
        # Created first, then started at --rate: creating a container (its filesystem layers) is
        # what limits this engine to ~6 runs/s; a start alone is what the agent reacts to.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            names = list(pool.map(lambda i: self.run(
                f"app{i}", *self.part1_command(), env={"SERVICE_NAME": "benchapp", "SERVICE_TAGS": "bench"},
                labels={"apbench.agent": f"{RUN}-reg"}, verb=("create",),
                options=() if self.args.idle_image is None else ("--expose", "80")), range(self.args.containers)))
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            futures = []
            for i, name in enumerate(names):
                time.sleep(max(0.0, started + i / self.args.rate - time.monotonic()))
                futures.append(pool.submit(docker, "start", name))
            for future in futures:
                future.result()
        elapsed = time.monotonic() - started
        self.wait("every app registered", lambda: all(n in seen for n in names), timeout=120)
        stop.set()
        poller.join()
        proc.terminate()
        latencies = [seen[n] - events[n] for n in names if n in events]
        inspects = [inspected[n] - events[n] for n in names if n in events and n in inspected]
        return names, elapsed, latencies, inspects

    def part1_command(self) -> tuple[str, ...]:
        """The app image, or with --idle-image a container that only sleeps (port 80 exposed), so
        the host's CPU goes to the engine and the agent rather than to app start-up."""
        if self.args.idle_image is None:
            return (self.args.app_image,)
        return (self.args.idle_image, "sleep", "infinity")

    # ---- 2: app answers -> routed
    def routed_latency(self) -> dict[str, list[float]]:
        results: dict[str, list[float]] = {"probe": [], "plain": []}

        def one(i: int, group: str) -> None:
            agent = "reg" if group == "probe" else "regplain"
            service = f"r{i}{group}"
            name = self.run(f"routed{i}{group}", self.args.app_image,
                            env={"SERVICE_NAME": service, "SERVICE_TAGS": "bench", "SERVICE_CHECK_HTTP": "/",
                                 "SERVICE_CHECK_INTERVAL": "5s"},
                            labels={"apbench.agent": f"{RUN}-{agent}"})
            ip = docker("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{self.net}").IPAddress}}}}', name)
            answered: float | None = None
            routed: float | None = None
            deadline = time.monotonic() + 60
            url = f"http://127.0.0.1:{self.proxy_port}/"
            while time.monotonic() < deadline and routed is None:
                now = time.monotonic()
                if answered is None and get(f"http://{ip}/", timeout=0.2)[0] == 200:
                    answered = now
                if get(url, host=f"{service}.bench.test", timeout=1.0)[0] == 200:
                    routed = time.monotonic()
                time.sleep(0.01)
            if answered and routed:
                results[group].append(max(0.0, routed - answered))

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: one(i // 2, ("probe", "plain")[i % 2]), range(2 * self.args.routed)))
        return results

    # ---- 3: footprint and restore
    def agent_footprint(self, seconds: float = 30) -> tuple[float, float]:
        pid = docker("inspect", "-f", "{{.State.Pid}}", self.name("reg"))
        children = subprocess.run(["pgrep", "-P", pid], capture_output=True, text=True, check=False).stdout.split()
        python = children[0] if children else pid

        def read(path: str) -> str:
            with open(path, encoding="ascii") as handle:
                return handle.read()

        def cpu_ticks() -> int:
            fields = read(f"/proc/{python}/stat").rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])

        before = cpu_ticks()
        time.sleep(seconds)
        used = (cpu_ticks() - before) / os.sysconf("SC_CLK_TCK")
        rss = [line for line in read(f"/proc/{python}/status").splitlines() if line.startswith("VmRSS")][0].split()[1]
        return int(rss) / 1024, used / seconds * 100

    # ---- churn: threads and memory while many containers start and stop
    def agent_process(self, name: str) -> str:
        """The agent's Python process on this host (tini's child)."""
        pid = docker("inspect", "-f", "{{.State.Pid}}", name)
        children = subprocess.run(["pgrep", "-P", pid], capture_output=True, text=True, check=False).stdout.split()
        return children[0] if children else pid

    @staticmethod
    def threads_and_rss(pid: str) -> tuple[int, float]:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024

    def owned_count(self, owner: str) -> int:
        return sum(1 for s in self.consul("/v1/agent/services").values()
                   if s["Meta"].get("autoproxy_owner") == f"registrator:{owner}")

    def churn(self, index: int, image: str) -> tuple[float, float, dict[str, tuple[int, float, tuple[int, float]]]]:
        stem = f"churn{index}"
        label = f"{RUN}-{index}"
        name = self.run(stem, image, "registrator", "--consul=http://consul:8500", "--internal", f"--hostname={stem}",
                        f"--filter-label=apbench.churn={label}", "--probe-interval=0.5", "--probe-timeout=20",
                        labels={"SERVICE_IGNORE": "1"},
                        options=("-v", "/var/run/docker.sock:/var/run/docker.sock",
                                 "--cpu-shares", str(self.args.cpu_shares)))
        self.wait("agent started", lambda: "registrator agent started" in self.logs_err(name), timeout=60)
        pid = self.agent_process(name)
        samples: list[tuple[str, int, float]] = []
        phase = ["idle before"]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError, KeyError, ValueError):
                    samples.append((phase[0], *self.threads_and_rss(pid)))
                stop.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        time.sleep(3)
        count = self.args.churn
        env = {"SERVICE_NAME": "churn", "SERVICE_CHECK_TCP": "true", "SERVICE_CHECK_INTERVAL": "30s"}
        phase[0] = "creating"
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            names = list(pool.map(lambda i: self.run(
                f"c{index}-{i}", self.args.idle_image or "autoproxy/debian:trixie", "sleep", "infinity", env=env,
                labels={"apbench.churn": label}, verb=("create",), options=("--expose", "80")), range(count)))
        phase[0] = "starting"
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda n: docker("start", n), names))
        start_seconds = time.monotonic() - started
        phase[0] = "probing and registering"
        self.wait("all registered", lambda: self.owned_count(stem) >= count, timeout=300, interval=1)
        phase[0] = "removing"
        removed_at = time.monotonic()
        batches = [names[i:i + 20] for i in range(0, len(names), 20)]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda batch: docker("rm", "-f", *batch), batches))
        self.wait("all deregistered", lambda: self.owned_count(stem) == 0, timeout=300, interval=1)
        remove_seconds = time.monotonic() - removed_at
        phase[0] = "idle after"
        time.sleep(20)
        stop.set()
        sampler.join()
        docker("rm", "-f", name, check=False)
        by_phase: dict[str, list[tuple[int, float]]] = {}
        for phase_name, threads, rss in samples:
            by_phase.setdefault(phase_name, []).append((threads, rss))
        return start_seconds, remove_seconds, {
            phase_name: (max(t for t, _r in values), max(r for _t, r in values), values[-1])
            for phase_name, values in by_phase.items()}

    @staticmethod
    def logs_err(name: str) -> str:
        return subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False).stderr

    def restore_time(self, count: int) -> float:
        docker("restart", "-t", "1", self.name("consul"))
        self.wait("Consul back", lambda: self.consul("/v1/status/leader"), interval=0.02)
        back = time.monotonic()
        self.wait("every registration restored", lambda: sum(
            1 for s in self.consul("/v1/agent/services").values()
            if s["Meta"].get("autoproxy_owner") == "registrator:reg" and s["Service"] == "benchapp") >= count,
            timeout=60, interval=0.02)
        return time.monotonic() - back


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", default="autoproxy/agent:test")
    parser.add_argument("--app-image", default="autoproxy/hello-world:latest")
    parser.add_argument("--consul-image", default="autoproxy/consul:1.8.7")
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=12.0)
    parser.add_argument("--routed", type=int, default=20, help="containers per group in part 2")
    parser.add_argument("--idle-image", help="part 1 starts this image running 'sleep infinity' instead of the app "
                        "(e.g. autoproxy/debian:trixie)")
    parser.add_argument("--cpu-shares", type=int, default=8192,
                        help="docker --cpu-shares of Consul and the agents, as the roles set it (apps keep "
                             "Docker's default, 1024)")
    parser.add_argument("--poll", type=float, default=0.005,
                        help="seconds between reads of the Consul agent's services in part 1")
    parser.add_argument("--churn", type=int, default=0,
                        help="run only the churn part with this many containers (see above)")
    parser.add_argument("--churn-images", default="autoproxy/agent:test",
                        help="comma list of agent images compared side by side in the churn part")
    args = parser.parse_args()
    bench = Bench(args)
    if args.churn:
        try:
            docker("network", "create", "--label", LABEL, bench.net)
            bench.run("consul", args.consul_image, "agent", "-dev", "-client=0.0.0.0", labels={"SERVICE_IGNORE": "1"},
                      options=("-p", f"127.0.0.1:{bench.consul_port}:8500", "--network-alias", "consul",
                               "--cpu-shares", str(args.cpu_shares)))
            bench.wait("Consul", lambda: bench.consul("/v1/status/leader"))
            for index, image in enumerate(args.churn_images.split(",")):
                start_seconds, remove_seconds, phases = bench.churn(index, image)
                print(f"churn with {image}: {args.churn} containers started in {start_seconds:.0f}s (created "
                      f"first), removed in {remove_seconds:.0f}s (docker rm -f, 20 per call, 4 calls at once), "
                      f"{time.strftime('%H:%M:%S', time.gmtime())} UTC", flush=True)
                print("agent image | phase | peak threads | peak RSS MiB | last threads | last RSS MiB")
                for phase, (threads, rss, (last_threads, last_rss)) in phases.items():
                    print(f"{image} | {phase} | {threads} | {rss:.1f} | {last_threads} | {last_rss:.1f}", flush=True)
        finally:
            bench.cleanup()
        return
    try:
        bench.setup()
        names, elapsed, latencies, inspects = bench.registration_latency()
        print(f"1. started {len(names)} containers in {elapsed:.1f}s ({len(names) / elapsed:.1f}/s)")
        print(f"   Docker start event -> Consul agent registration: {percentiles(latencies)}")
        print(f"   Docker start event -> the same container inspected by this harness: {percentiles(inspects)}")
        routed = bench.routed_latency()
        print("2. app first answers -> first 2xx through the proxy (HTTP check, interval 5s):")
        print(f"   with the fast probe:          {percentiles(routed['probe'])}")
        print(f"   plain Consul check scheduling: {percentiles(routed['plain'])}")
        if routed["probe"] and routed["plain"]:
            print(f"   means: {statistics.mean(routed['probe']):.2f}s vs {statistics.mean(routed['plain']):.2f}s")
        rss, cpu = bench.agent_footprint()
        print(f"3. agent (probing one) idle with {len(names) + args.routed} containers: RSS {rss:.1f} MiB, "
              f"CPU {cpu:.2f}% of one core over 30s")
        print(f"   Consul restarted empty: {len(names)} registrations restored {bench.restore_time(len(names)):.2f}s "
              "after Consul answered again")
    finally:
        bench.cleanup()


if __name__ == "__main__":
    main()
