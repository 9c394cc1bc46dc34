# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registrator's pools: one worker per container at a time, bounded threads, idle threads exit."""

from __future__ import annotations

import socket
import threading
import time

from ansible_collections.autoproxy.stack.agents._registrator_probes import ProbePool
from ansible_collections.autoproxy.stack.agents._registrator_workers import ContainerWorkers


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_tasks_of_one_key_run_in_order_and_never_at_once():
    workers = ContainerWorkers(lambda key, exc: None, max_workers=8, idle_seconds=0.2)
    seen = {key: [] for key in "abc"}
    running = {key: 0 for key in "abc"}
    overlaps = []

    def task(key, index):
        running[key] += 1
        if running[key] > 1:
            overlaps.append(key)
        time.sleep(0.001)
        seen[key].append(index)
        running[key] -= 1

    for index in range(50):
        for key in "abc":
            workers.submit(key, task, key, index)
    assert wait_until(lambda: all(len(done) == 50 for done in seen.values()))
    assert all(done == list(range(50)) for done in seen.values())
    assert overlaps == []


def test_threads_stay_bounded_and_exit_when_idle():
    workers = ContainerWorkers(lambda key, exc: None, max_workers=4, idle_seconds=0.2)
    release = threading.Event()
    peak = []

    def task():
        peak.append(threading.active_count())
        release.wait(5)

    before = threading.active_count()
    for index in range(500):
        workers.submit(f"container{index}", task)
    assert workers.stats()[0] == 4
    release.set()
    assert wait_until(lambda: workers.stats() == (0, 0))
    assert max(peak) <= before + 4
    assert wait_until(lambda: threading.active_count() <= before)


def test_a_failing_task_is_reported_and_the_key_goes_on():
    failures = []
    done = []
    workers = ContainerWorkers(lambda key, exc: failures.append((key, str(exc))), max_workers=2, idle_seconds=0.2)

    def fail():
        raise ValueError("bad container")

    workers.submit("web", fail)
    workers.submit("web", done.append, 1)
    assert wait_until(lambda: done == [1])
    assert failures == [("web", "bad container")]


def test_probes_run_on_a_bounded_pool_and_report_once():
    stopping = threading.Event()
    pool = ProbePool(stopping, max_workers=3, idle_seconds=0.2)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    results = []
    before = threading.active_count()
    try:
        answering = {"kind": "tcp", "host": "127.0.0.1", "port": port, "timeout": 0.5}
        silent = {"kind": "tcp", "host": "127.0.0.1", "port": closed_port, "timeout": 0.5}
        for _unused in range(20):
            pool.start(answering, 0.05, 5.0, lambda passed: results.append(("answering", passed)))
        for _unused in range(100):
            pool.start(silent, 0.05, 0.5, lambda passed: results.append(("silent", passed)))
        cancelled = pool.start(silent, 0.05, 0.5, lambda passed: results.append(("cancelled", passed)))
        cancelled.set()
        assert pool.stats()[0] <= 3
        assert wait_until(lambda: len(results) == 120)
        time.sleep(0.3)
        assert sorted(set(results)) == [("answering", True), ("silent", False)]
        assert results.count(("answering", True)) == 20 and len(results) == 120
        assert wait_until(lambda: pool.stats() == (0, 0))
        assert wait_until(lambda: threading.active_count() <= before)
    finally:
        listener.close()
        stopping.set()


def test_a_full_pass_waits_for_its_checks_so_passes_never_pile_up():
    from ansible_collections.autoproxy.stack.agents._registrator_full_pass import _Countdown

    workers = ContainerWorkers(lambda key, exc: None, max_workers=4, idle_seconds=0.2)
    pending = _Countdown()
    submit = pending.wrapping(workers.submit)
    done = []

    def check(index):
        time.sleep(0.002)
        if index % 7 == 0:
            raise ValueError("a failing check still counts as handled")
        done.append(index)

    for index in range(100):
        submit(f"container{index % 10}", check, index)
    pending.wait(threading.Event())
    assert len(done) == 100 - len(range(0, 100, 7))
