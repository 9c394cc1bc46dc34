# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helpers for the fleet tests: the running lab and an Ansible controller for it."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent


class Fleet:
    """The running lab (lab.json) and an Ansible controller for it."""

    def __init__(self, facts: dict, config: Path):
        self.facts = facts
        self.inventory = facts["inventory"]
        self.hosts: dict[str, str] = facts["hosts"]
        self.env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")

    def _run(self, cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, check=False)

    def playbook(self, playbook: str, *extra: str, check: bool = True, timeout: float = 1200) -> str:
        """Run a playbook (path or FQCN) over the lab's inventory; its output, echoed for the report."""
        proc = self._run([str(BIN / "ansible-playbook"), "-i", self.inventory, playbook, *extra], self.env, timeout)
        sys.stdout.write(proc.stdout)
        if check and proc.returncode != 0:
            pytest.fail(f"ansible-playbook {playbook} failed with {proc.returncode} (output above)")
        return proc.stdout

    def playbook_json(self, playbook: str, *extra: str, timeout: float = 1200) -> dict:
        """Run a playbook with the JSON callback; the parsed result (plays, tasks, per-host results, stats)."""
        env = dict(self.env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
        proc = self._run([str(BIN / "ansible-playbook"), "-i", self.inventory, playbook, *extra], env, timeout)
        try:
            return json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            sys.stdout.write(proc.stdout)
            pytest.fail(f"ansible-playbook {playbook} gave no JSON result (exit {proc.returncode}, output above)")

    def ssh(self, host: str, command: str, timeout: float = 60) -> str:
        """Run a shell command on a lab host over SSH (the lab's ssh_config); its stdout."""
        return self._checked(host, command, self._ssh(host, command, timeout))

    def docker_exec(self, host: str, container: str, command: str, tries: int = 3) -> str:
        """`docker exec <container> <command>` on a lab host (command: shell words); its stdout.

        Docker's runtime may fail to start the command in a running container (exit 126, "OCI
        runtime exec failed" on stdout; seen once in CI, on a lab host's nested engine under
        load). Such a failure is tried again, up to `tries` times in all, each retry a warning in
        the report. Not one that says the container stopped: a stopping or restarting container
        is a finding, and fails the test at once, as any other failure does.
        """
        line = f"docker exec {container} {command}"
        proc = self._ssh(host, line, 60)
        for _retry in range(tries - 1):
            if not _exec_did_not_start(proc):
                break
            warnings.warn(f"{host}: {line!r} did not start, trying again: {proc.stdout.strip()[-300:]}", stacklevel=2)
            time.sleep(1)
            proc = self._ssh(host, line, 60)
        return self._checked(host, line, proc)

    def ssh_result(self, host: str, command: str, timeout: float = 60) -> tuple[bool, str]:
        """(True, stdout) of a shell command on a lab host, or (False, what it printed) where it fails."""
        proc = self._ssh(host, command, timeout)
        if proc.returncode == 0:
            return True, proc.stdout
        return False, f"{host}: exit {proc.returncode}: {(proc.stderr.strip() or proc.stdout.strip())[-300:]}"

    def _ssh(self, host: str, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ssh", "-F", self.facts["ssh_config"], "-o", "BatchMode=yes", host, command],
                              capture_output=True, text=True, timeout=timeout, check=False)

    @staticmethod
    def _checked(host: str, command: str, proc: subprocess.CompletedProcess[str]) -> str:
        if proc.returncode != 0:
            # docker exec writes a failure to start the command (exit 126) to stdout, not stderr.
            pytest.fail(f"ssh {host} {command!r} exited {proc.returncode}: "
                        f"stderr {proc.stderr.strip()!r}, stdout {proc.stdout.strip()[-2000:]!r}")
        return proc.stdout


# docker exec's exit code when the runtime could not start the command (docker run reference, "Exit status").
DOCKER_EXEC_NOT_STARTED = 126


def _exec_did_not_start(proc: subprocess.CompletedProcess[str]) -> bool:
    """docker exec failed to start its command in a container that still runs."""
    return (proc.returncode == DOCKER_EXEC_NOT_STARTED and "OCI runtime exec failed" in proc.stdout
            and "stopped" not in proc.stdout)


def task_results(result: dict, task_name: str) -> dict[str, dict]:
    """Per-host results of the task called task_name in a JSON callback result."""
    for play in result["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == task_name:
                return task["hosts"]
    pytest.fail(f"no task {task_name!r} in the playbook's result")


def failures(result: dict) -> dict[str, int]:
    """Hosts with failed or unreachable tasks in a JSON callback result: {host: count}."""
    return {host: stats["failures"] + stats["unreachable"] for host, stats in result["stats"].items()
            if stats["failures"] or stats["unreachable"]}


def changed_hosts(result: dict) -> dict[str, int]:
    """Hosts that reported changes in a JSON callback result: {host: changed count}."""
    return {host: stats["changed"] for host, stats in result["stats"].items() if stats["changed"]}


def groups(lab_facts: dict) -> dict[str, list[str]]:
    """The lab inventory's groups: {group: sorted host names}."""
    inventory = yaml.safe_load(Path(lab_facts["inventory"]).read_text())["all"]["children"]
    return {name: sorted(group["hosts"]) for name, group in inventory.items()}


def http_get(address: str, host: str, path: str = "/", port: int = 80, timeout: float = 5) -> tuple[int, str]:
    """GET http://address:port/path with the Host header `host`: (status, body); (0, error) when no answer."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)
    finally:
        conn.close()


HELLO = "www.hello.test"  # the demo app's host through an edge (service www, tag hello, domain test)
HOSTNAME_RE = re.compile(r"My hostname is ([0-9a-f]+)")  # the demo app names the container that answered


def answered_by(status: int, body: str) -> str | None:
    """The demo app's container (its hostname, a short container ID) that gave a 200, else None."""
    match = HOSTNAME_RE.search(body) if status == 200 else None
    return match.group(1) if match else None


def edge_answers(address: str, tries: int, port: int = 80) -> tuple[set[str], list[int]]:
    """Demo app containers answering `tries` requests for HELLO at address:port, and the other statuses seen."""
    names, others = set(), []
    for _try in range(tries):
        status, body = http_get(address, HELLO, port=port)
        name = answered_by(status, body)
        if name:
            names.add(name)
        else:
            others.append(status)
    return names, others


def wait_routed_exactly(edges: dict[str, str], wanted: set[str], port: int = 80, timeout: float = 90) -> None:
    """Each edge ({name: address}) answers HELLO from exactly the containers `wanted` (hostnames), without errors."""
    for edge, address in edges.items():
        def routed(address: str = address) -> bool | tuple[list[str], list[int]]:
            names, others = edge_answers(address, 4 * len(wanted), port)
            return True if names == wanted and not others else (sorted(names), others)
        wait_until(f"edge {edge} to answer {HELLO} from exactly {sorted(wanted)}", routed, timeout=timeout)


def wait_until(what: str, probe, timeout: float = 90.0, interval: float = 1.0):
    """Poll probe() until it returns True; fail naming `what` and the last other value it returned."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last is True:
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last}")


class FleetStack:
    """The stack as site.yml deployed it over the lab (fixture fleet_stack): the run's result and duration."""

    PREFIX = "autoproxy"
    DOMAIN = "test"

    def __init__(self, fleet: Fleet, site_result: dict, site_seconds: float):
        self.fleet = fleet
        self.site_result = site_result
        self.site_seconds = site_seconds
        self.groups = groups(fleet.facts)

    @property
    def edges(self) -> list[str]:
        return self.groups["edges"]

    def containers(self, host: str, app: str = "autoproxy_web") -> dict[str, str]:
        """The running containers of a demo app on a lab host: {name: short ID (the app's hostname)}."""
        out = self.fleet.ssh(host, f"docker ps --filter label=autoproxy.stack.app={app} "
                                   "--format '{{.Names}} {{.ID}}'")
        return dict(line.split() for line in out.splitlines() if line.strip())

    def running(self, host: str) -> set[str]:
        """Names of every running container of the stack on a lab host."""
        out = self.fleet.ssh(host, f"docker ps --filter label=autoproxy.stack.project={self.PREFIX} "
                                   "--format '{{.Names}}'")
        return set(out.split())

    def wait_routed_exactly(self, wanted: set[str], edges: list[str] | None = None, timeout: float = 90) -> None:
        """Each edge (all by default) answers HELLO from exactly the containers `wanted`; see wait_routed_exactly()."""
        wait_routed_exactly({edge: self.fleet.hosts[edge] for edge in edges or self.edges}, wanted, timeout=timeout)

    def get(self, edge: str, host: str, path: str = "/") -> tuple[int, str]:
        """A request through an edge's proxy (port 80 of the lab host) with the Host header `host`."""
        return http_get(self.fleet.hosts[edge], host, path)
