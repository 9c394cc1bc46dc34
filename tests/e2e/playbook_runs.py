# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Running ansible-playbook as a user does: the checkout's forms, and the collection installed from its tarball."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from support import ROOT

BIN = os.path.dirname(sys.executable)


def run(args, env=None, cwd=ROOT, expect_failure=False):
    """ansible-playbook ARGS in ``cwd`` with ``env`` over os.environ; its output. Fails the test on an
    unexpected exit status (the output is printed either way)."""
    full_env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", **(env or {}))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), *args], env=full_env, cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1200, check=False)
    sys.stdout.write(proc.stdout)
    if expect_failure and proc.returncode == 0:
        pytest.fail(f"ansible-playbook {' '.join(args)} succeeded, a failure was expected (output above)")
    if not expect_failure and proc.returncode != 0:
        pytest.fail(f"ansible-playbook {' '.join(args)} failed with {proc.returncode} (output above)")
    return proc.stdout


def recap(output, host="localhost"):
    """The PLAY RECAP counters of ``host``: {"ok": n, "changed": n, "failed": n, ...}."""
    match = re.search(rf"^{re.escape(host)}\s*:\s*(.*)$", output, re.MULTILINE)
    if not match:
        pytest.fail(f"no PLAY RECAP line for {host} in the output")
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def install_collection(workdir):
    """Build the collection tarball from the checkout and install it under ``workdir``/collections.

    Returns the collections path. --no-deps: community.docker comes with the `ansible` package, and
    Galaxy may be unreachable.
    """
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path",
                    str(workdir), ROOT], check=True, stdout=subprocess.PIPE)
    tarballs = list(workdir.glob("autoproxy-stack-*.tar.gz"))
    if len(tarballs) != 1:
        pytest.fail(f"ansible-galaxy collection build made {tarballs!r}")
    collections = workdir / "collections"
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--no-deps",
                    "-p", str(collections), str(tarballs[0])], check=True, stdout=subprocess.PIPE,
                   env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections)))
    return str(collections)
