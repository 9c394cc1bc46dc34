# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fleet benchmarks on the lab (tests/fleet; `make fleet-up` first), numbers for docs/BENCHMARKS.md.

    .venv/bin/python bench/fleet/bench_fleet.py --playbooks --tries 10

--playbooks times the collection's playbooks from its installed tarball over the lab: teardown,
a cold site.yml, a second one (changed=0 expected), scale.yml to 1 and then to 9. Then, with the
stack deployed, each try starts a new service's container on --source and measures the time from
its start (Docker's StartedAt, the same kernel clock as this machine) to its first 2xx through the
proxy on --edge, polling every 10 ms from before the start. The containers are removed afterwards.

--swarm-tries measures the same for a Swarm task, on a lab where tests/fleet/playbooks/swarm.yml
was applied (--swarm-deploy applies it first; a fresh lab, as for the Swarm tests). Each try
brings the demo app's service to 1 task, then `docker service scale` to 2 and polls www.hello.test
through an edge's proxy (port 8080 there) every 10 ms from before the scale, until a body names
the new task's hostname; measured from that task's StartedAt on its node, through the edge on
another host than the task. The service is left at its tasks from before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "fleet"))

from fleet_support import HELLO, answered_by, changed_hosts, groups, http_get  # noqa: E402
from lab import Config  # noqa: E402

BIN = Path(sys.executable).parent
PREFIX = "apbench"
SWARM_PLAYBOOK = ROOT / "tests" / "fleet" / "playbooks" / "swarm.yml"
SWARM_SERVICE = "autoproxy_web"
SWARM_EDGE_PORT = 8080  # proxy_http_host_port in playbooks/swarm.yml


def installed_collection(workdir: Path) -> Path:
    """An ansible.cfg whose collections_path holds the collection installed from a freshly built tarball."""
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(workdir),
                    str(ROOT)], check=True, stdout=subprocess.DEVNULL)
    config = workdir / "ansible.cfg"
    config.write_text(f"[defaults]\ncollections_path = {workdir / 'collections'}\nretry_files_enabled = false\n"
                      "interpreter_python = auto_silent\n")
    tarball = next(workdir.glob("autoproxy-stack-*.tar.gz"))
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "-p",
                    str(workdir / "collections"), str(tarball)], check=True, stdout=subprocess.DEVNULL,
                   env=dict(os.environ, ANSIBLE_CONFIG=str(config)))
    return config


def time_playbooks(facts: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, ANSIBLE_CONFIG=str(installed_collection(Path(tmp))),
                   ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
        runs = [("teardown", []), ("site (cold)", []), ("site (second run)", []),
                ("scale to 1", ["-e", "web_replicas=1"]), ("scale 1 -> 9", ["-e", "web_replicas=9"]),
                ("scale 9 -> 1", ["-e", "web_replicas=1"])]
        for label, extra in runs:
            playbook = "autoproxy.stack." + label.split()[0]
            started = time.monotonic()
            proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", facts["inventory"], playbook, *extra],
                                  env=env, capture_output=True, text=True, check=False)
            seconds = time.monotonic() - started
            result = json.loads(proc.stdout[proc.stdout.index("{"):])
            if proc.returncode != 0:
                sys.exit(f"{label}: ansible-playbook exited {proc.returncode}: {json.dumps(result['stats'])}")
            print(f"{label:20s} {seconds:6.1f} s   changed hosts: {changed_hosts(result) or 'none'}", flush=True)


def ssh(facts: dict, host: str, command: str) -> str:
    proc = subprocess.run(["ssh", "-F", facts["ssh_config"], "-o", "BatchMode=yes", host, command],
                          capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        sys.exit(f"ssh {host} {command!r}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def started_at(facts: dict, host: str, name: str) -> float:
    """Docker's StartedAt of a container, as a Unix time (nanoseconds cut to microseconds)."""
    return iso_time(ssh(facts, host, f"docker inspect -f '{{{{.State.StartedAt}}}}' {name}"))


def iso_time(stamp: str) -> float:
    """A Docker timestamp (RFC 3339 in UTC, nanoseconds) as a Unix time, cut to microseconds."""
    head, _dot, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction or '0')[:6]:0<6}+00:00").timestamp()


def first_2xx(address: str, host: str, stop: threading.Event, found: list[float], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        status, _body = http_get(address, host, timeout=2)
        if 200 <= status < 300:
            found.append(time.time())
            return
        time.sleep(0.01)


def measure(facts: dict, source: str, edge: str, tries: int, timeout: float) -> list[float]:
    image = facts["images"]["demo_app_image"]
    address = facts["hosts"][edge]
    latencies = []
    try:
        for i in range(tries):
            name, service = f"{PREFIX}_{i}", f"fleetbench{i}"
            ssh(facts, source, f"docker rm -f {name} >/dev/null 2>&1; docker create --name {name} "
                               f"--label autoproxy.stack.project={PREFIX} -e SERVICE_NAME={service} "
                               f"-e SERVICE_TAGS=bench -e SERVICE_CHECK_HTTP=/ -e SERVICE_CHECK_INTERVAL=5s "
                               f"-p 0.0.0.0::80 {image} >/dev/null")
            found: list[float] = []
            stop = threading.Event()
            poller = threading.Thread(target=first_2xx, args=(address, f"{service}.bench.test", stop, found, timeout))
            poller.start()
            ssh(facts, source, f"docker start {name} >/dev/null")
            poller.join()
            stop.set()
            if not found:
                sys.exit(f"try {i}: no 2xx for {service}.bench.test through {edge} within {timeout:.0f} s")
            latencies.append(found[0] - started_at(facts, source, name))
            print(f"try {i}: {latencies[-1] * 1000:.0f} ms", flush=True)
    finally:
        ssh(facts, source, f"docker ps -aq --filter label=autoproxy.stack.project={PREFIX} | xargs -r docker rm -f")
    return latencies


def deploy_swarm(facts: dict) -> None:
    """tests/fleet/playbooks/swarm.yml over the lab, from the installed collection (1 task of the service)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, ANSIBLE_CONFIG=str(installed_collection(Path(tmp))))
        started = time.monotonic()
        proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", facts["inventory"], str(SWARM_PLAYBOOK),
                               "-e", "web_replicas=1"], env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"swarm.yml: ansible-playbook exited {proc.returncode}:\n{proc.stdout[-3000:]}")
        print(f"swarm.yml {time.monotonic() - started:6.1f} s", flush=True)


def swarm_tasks(facts: dict, manager: str) -> dict[str, tuple[str, str]]:
    """The service's running tasks: {task ID: (node, container ID)}."""
    out = ssh(facts, manager, f"docker service ps -q -f desired-state=running {SWARM_SERVICE}")
    tasks = {}
    for task in out.split():
        line = ssh(facts, manager, f"docker inspect -f '{{{{.NodeID}}}} {{{{.Status.State}}}} "
                                   f"{{{{.Status.ContainerStatus.ContainerID}}}}' {task}")
        node_id, state, container = line.split(" ", 2)
        if state == "running" and container:
            node = ssh(facts, manager, f"docker node inspect -f '{{{{.Description.Hostname}}}}' {node_id}")
            tasks[task] = (node, container)
    return tasks


def wait_tasks(facts: dict, manager: str, count: int, timeout: float) -> dict[str, tuple[str, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = swarm_tasks(facts, manager)
        if len(tasks) == count:
            return tasks
        time.sleep(0.5)
    sys.exit(f"{SWARM_SERVICE} did not reach {count} running tasks within {timeout:.0f} s")


def first_new_hostname(address: str, known: set[str], stop: threading.Event, found: list, timeout: float) -> None:
    """Poll www.hello.test every 10 ms until a 2xx names a hostname not in `known`: found gets (time, hostname)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        name = answered_by(*http_get(address, HELLO, port=SWARM_EDGE_PORT, timeout=2))
        if name and name not in known:
            found.append((time.time(), name))
            return
        time.sleep(0.01)


def measure_swarm(facts: dict, edges: list[str], tries: int, timeout: float) -> list[float]:
    """Per try: 1 task scaled to 2; from the new task's StartedAt to its first 2xx through another host's edge (s)."""
    manager = edges[0]  # h1: the first Consul server, the Swarm's first manager
    tasks = swarm_tasks(facts, manager)
    before = len(tasks)
    # Every task's hostname seen so far: a task scaled away may still answer while it drains.
    seen = {container[:12] for _node, container in tasks.values()}
    latencies = []
    try:
        for i in range(tries):
            ssh(facts, manager, f"docker service scale --detach {SWARM_SERVICE}=1 >/dev/null")
            old = wait_tasks(facts, manager, 1, timeout)
            time.sleep(3)  # the stopped task leaves the catalog and the edges' backends
            known = set(seen)
            # The new task's node is known only after the scale: poll both edges, keep the other host's.
            found = {edge: [] for edge in edges}
            stop = threading.Event()
            pollers = [threading.Thread(target=first_new_hostname,
                                        args=(facts["hosts"][edge], known, stop, found[edge], timeout))
                       for edge in edges]
            for poller in pollers:
                poller.start()
            ssh(facts, manager, f"docker service scale --detach {SWARM_SERVICE}=2 >/dev/null")
            for poller in pollers:
                poller.join()
            new = {task: where for task, where in wait_tasks(facts, manager, 2, timeout).items() if task not in old}
            ((node, container),) = new.values()
            seen.add(container[:12])
            edge = next((e for e in reversed(edges) if e != node), None)
            if edge is None or not found[edge]:
                sys.exit(f"try {i}: no 2xx from the new task {container[:12]} on {node} through {edge} "
                         f"within {timeout:.0f} s")
            answered_at, hostname = found[edge][0]
            if hostname != container[:12]:
                sys.exit(f"try {i}: {edge} answered from {hostname}, not the new task's container {container[:12]}")
            stamp = ssh(facts, node, f"docker inspect -f '{{{{.State.StartedAt}}}}' {container}")
            latencies.append(answered_at - iso_time(stamp))
            print(f"try {i}: task on {node} -> {edge}: {latencies[-1] * 1000:.0f} ms", flush=True)
    finally:
        ssh(facts, manager, f"docker service scale --detach {SWARM_SERVICE}={max(before, 1)} >/dev/null")
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--playbooks", action="store_true", help="time teardown, site.yml twice and scale 1 -> 9")
    parser.add_argument("--tries", type=int, default=10, help="containers started for the latency (0: none)")
    parser.add_argument("--source", help="lab host the containers start on (default: the first edge)")
    parser.add_argument("--edge", help="edge the requests go through (default: the last edge)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for one container's first 2xx")
    parser.add_argument("--swarm-deploy", action="store_true", help="apply tests/fleet/playbooks/swarm.yml first")
    parser.add_argument("--swarm-tries", type=int, default=0,
                        help="Swarm tasks scaled up for the latency (needs swarm.yml applied; 0: none)")
    args = parser.parse_args()
    facts_file = Config.from_env().state / "lab.json"
    if not facts_file.exists():
        sys.exit(f"no lab ({facts_file} is missing): run `make fleet-up` first")
    facts = json.loads(facts_file.read_text())
    edges = groups(facts)["edges"]
    source, edge = args.source or edges[0], args.edge or edges[-1]
    print(f"load average before: {os.getloadavg()}", flush=True)
    if args.playbooks:
        time_playbooks(facts)
    if args.tries:
        latencies = measure(facts, source, edge, args.tries, args.timeout)
        print(f"container started on {source} -> first 2xx through {edge}'s proxy, {len(latencies)} tries: "
              f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms")
    if args.swarm_deploy:
        deploy_swarm(facts)
    if args.swarm_tries:
        latencies = measure_swarm(facts, edges, args.swarm_tries, args.timeout)
        print(f"Swarm task started -> first 2xx through another host's edge, {len(latencies)} tries: "
              f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
              f"min {min(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    print(f"load average after: {os.getloadavg()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
