# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.autoproxy.stack.agents._common import Pacer


def run(pacer, arrivals):
    """Times at which the updates of changes arriving at ``arrivals`` (sorted) run, each waiting its delay."""
    ran, now = [], 0.0
    for arrival in arrivals:
        now = max(now, arrival)
        now += pacer.delay(now)
        pacer.spend(now)
        ran.append(round(now, 6))
    return ran


def test_changes_after_a_quiet_moment_are_applied_at_once():
    pacer = Pacer(0.2, burst=3)
    assert run(pacer, [0.0, 0.01, 0.02]) == [0.0, 0.01, 0.02]


def test_a_stream_of_changes_gets_one_update_per_interval_once_the_burst_is_spent():
    pacer = Pacer(0.2, burst=3)
    ran = run(pacer, [i * 0.01 for i in range(10)])
    assert ran[:3] == [0.0, 0.01, 0.02]
    gaps = [round(b - a, 6) for a, b in zip(ran[3:], ran[4:])]
    assert gaps == [0.2] * len(gaps)


def test_the_burst_comes_back_after_a_quiet_moment():
    pacer = Pacer(0.2, burst=3)
    run(pacer, [0.0, 0.0, 0.0, 0.0])
    assert pacer.delay(10.0) == 0.0
    assert run(pacer, [10.0, 10.0, 10.0]) == [10.0, 10.0, 10.0]


def test_an_interval_of_zero_never_waits():
    assert run(Pacer(0), [0.0] * 50) == [0.0] * 50


@pytest.mark.parametrize(("interval", "burst"), [(-0.1, 3), (0.2, 0)])
def test_a_pacer_refuses_what_cannot_pace(interval, burst):
    with pytest.raises(ValueError, match="Pacer needs"):
        Pacer(interval, burst)
