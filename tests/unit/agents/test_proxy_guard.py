# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Last-known-good: the proxy agent never applies a catalog that lost most services until confirmed."""

from __future__ import annotations

from ansible_collections.autoproxy.stack.agents._proxy_guard import DropGuard
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table


def table(*names, passing=True):
    return build_routing_table([{"service": n, "id": n, "address": "10.0.0.1", "port": 80, "tags": [],
                                 "passing": passing} for n in names], ["test"])


FULL = table("a", "b", "c", "d")


def test_small_changes_pass_straight_through():
    guard = DropGuard(confirm_after=3, fault_hold=30)
    new = table("a", "b", "c")
    assert guard.filter(FULL, new, now=100, last_fault=None) == (new, set(), None)


def test_an_empty_catalog_is_held_until_a_later_read_agrees():
    guard = DropGuard(confirm_after=3, fault_hold=30)
    empty = table()
    kept, held, recheck = guard.filter(FULL, empty, now=100, last_fault=None)
    assert held == {"a_backend", "b_backend", "c_backend", "d_backend"}
    assert kept["backends"] == FULL["backends"] and kept["hosts"] == FULL["hosts"]
    assert recheck == 3
    assert guard.filter(FULL, empty, now=101, last_fault=None)[1] == held, "too early to confirm"
    assert guard.filter(FULL, empty, now=103, last_fault=None) == (empty, set(), None)


def test_a_drop_right_after_a_consul_fault_waits_for_the_fault_hold():
    guard = DropGuard(confirm_after=3, fault_hold=30)
    empty = table()
    guard.filter(FULL, empty, now=100, last_fault=99)
    kept, held, recheck = guard.filter(FULL, empty, now=110, last_fault=99)
    assert held and recheck == 19
    assert guard.filter(FULL, empty, now=129, last_fault=99)[1] == set()


def test_additions_go_through_while_drops_are_held():
    guard = DropGuard(confirm_after=3, fault_hold=30)
    kept, held, _unused = guard.filter(FULL, table("a", "new"), now=100, last_fault=None)
    assert held == {"b_backend", "c_backend", "d_backend"}
    assert sorted(kept["backends"]) == ["a_backend", "b_backend", "c_backend", "d_backend", "new_backend"]
    assert kept["hosts"]["new.test"] == "new_backend"


def test_all_servers_turning_critical_counts_as_a_drop():
    guard = DropGuard(confirm_after=3, fault_hold=30)
    critical = table("a", "b", "c", "d", passing=False)
    kept, held, _unused = guard.filter(FULL, critical, now=100, last_fault=None)
    assert len(held) == 4 and kept["backends"] == FULL["backends"]


def test_recovery_clears_a_pending_confirmation():
    guard = DropGuard(confirm_after=3, fault_hold=30)
    guard.filter(FULL, table(), now=100, last_fault=None)
    guard.filter(FULL, FULL, now=101, last_fault=None)
    assert guard.filter(FULL, table(), now=103, last_fault=None)[1], "a new drop starts a new wait"
