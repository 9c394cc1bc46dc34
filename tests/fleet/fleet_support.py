# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helpers for the fleet tests: the running lab and an Ansible controller for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
        proc = subprocess.run(["ssh", "-F", self.facts["ssh_config"], "-o", "BatchMode=yes", host, command],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            pytest.fail(f"ssh {host} {command!r} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout


def task_results(result: dict, task_name: str) -> dict[str, dict]:
    """Per-host results of the task called task_name in a JSON callback result."""
    for play in result["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == task_name:
                return task["hosts"]
    pytest.fail(f"no task {task_name!r} in the playbook's result")
