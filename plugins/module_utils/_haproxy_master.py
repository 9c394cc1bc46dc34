# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HAProxy's master CLI: reading ``show proc`` and a reload that checks it took.

The one copy both the proxy agent and the haproxy_config module use (the module runs it in a
container through the agent's ``reload`` subcommand). Stdlib only.
"""

from __future__ import annotations

import re
import time
from typing import Callable

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import HaproxyError, findings

_SHOW_PROC_MASTER_RE = re.compile(r"^\s*\d+\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]", re.MULTILINE)
_SHOW_PROC_WORKER_RE = re.compile(r"^\s*(\d+)\s+worker\b", re.MULTILINE)

# send(command) -> the master CLI's answer; raises HaproxyError when the socket is unreachable.
# typing.Callable: collections.abc.Callable cannot be subscripted at run time on Python 3.8 targets.
Send = Callable[[str], str]


class ReloadError(HaproxyError):
    """HAProxy did not load the new configuration (it keeps the old one) or did not say."""


def master_state(show_proc: str) -> tuple[int, int] | None:
    """(reloads, failed reloads) of the master in ``show proc`` output, or None if absent."""
    match = _SHOW_PROC_MASTER_RE.search(show_proc)
    return (int(match.group(1)), int(match.group(2))) if match else None


def worker_pids(show_proc: str) -> set[int]:
    """The PIDs of the workers (current and old ones still finishing) in ``show proc`` output."""
    return {int(pid) for pid in _SHOW_PROC_WORKER_RE.findall(show_proc)}


def verified_reload(
    send: Send,
    timeout: float = 10.0,
    interval: float = 0.2,
    ready: Callable[[set[int]], bool] | None = None,
) -> str:
    """Reload through the master CLI and wait until HAProxy says whether the new config loaded.

    HAProxy 3.x answers ``reload`` with ``Success=0|1``; 2.x answers nothing, so the reload and
    failure counters of ``show proc`` decide. ``ready(new_worker_pids)``, when given, must also
    hold before this returns (the agent waits until the new worker answers on its runtime
    socket). Returns what HAProxy reported; raises ReloadError naming what went wrong.
    """
    before_text = send("show proc")
    before = master_state(before_text)
    if before is None:
        raise ReloadError("the master CLI did not answer 'show proc'; is this HAProxy's master socket (-S)?")
    old_workers = worker_pids(before_text)
    answer = send("reload")
    if "Success=0" in answer:
        raise ReloadError("HAProxy refused the new configuration: " + findings(answer))
    took = "Success=1" in answer
    if took and ready is None:
        return answer.strip()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        try:
            text = send("show proc")
        except HaproxyError:
            continue  # the master re-executes itself and refuses connections meanwhile
        after = master_state(text)
        if after is None or (not took and after[0] <= before[0]):
            continue
        if after[1] > before[1]:
            raise ReloadError("HAProxy refused the new configuration and kept the old one (show proc counts a "
                              "failed reload); its log says why")
        if ready is None or ready(worker_pids(text) - old_workers):
            return answer.strip() if took else f"reloads: {after[0]}"
    raise ReloadError(f"HAProxy did not report the reload within {timeout:g}s")
