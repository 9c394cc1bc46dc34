# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The claims index: who holds a contested service ID, who must reconcile when it changes hands."""

from __future__ import annotations

from ansible_collections.autoproxy.stack.agents._registrator_claims import ServiceIdClaims
from ansible_collections.autoproxy.stack.plugins.module_utils._service_id_ownership import claim_order

FIRST = claim_order("2026-11-29T15:40:00Z", "a")
SECOND = claim_order("2026-11-29T15:41:00Z", "b")
THIRD = claim_order("2026-11-29T15:42:00Z", "c")


def test_a_later_claimant_does_not_move_the_id():
    claims = ServiceIdClaims()
    assert claims.claim("web1", ["shop-1"], FIRST) == ({"shop-1": "web1"}, set())
    assert claims.claim("web2", ["shop-1", "own"], SECOND) == ({"shop-1": "web1", "own": "web2"}, set())
    assert claims.contested() == 1


def test_a_new_claimant_not_registered_yet_gets_the_id_when_the_holder_leaves():
    claims = ServiceIdClaims()
    claims.claim("web1", ["shop-1"], FIRST)
    claims.claim("web3", ["shop-1"], THIRD)
    claims.claim("web2", ["shop-1"], SECOND)
    assert claims.release("web1") == {"web2"}
    assert claims.release("web3") == set()  # not the holder: nobody else is affected
    assert claims.claim("web2", ["shop-1"], SECOND) == ({"shop-1": "web2"}, set())


def test_claimants_on_their_fallback_stay_there_when_the_holder_leaves():
    claims = ServiceIdClaims()
    claims.claim("web1", ["shop-1"], FIRST, registered_ids=["shop-1"])
    claims.claim("web2", ["shop-1"], SECOND, registered_ids=["shop-1:web2"])
    assert claims.release("web1") == set()
    assert claims.claim("web2", ["shop-1"], SECOND) == ({"shop-1": None}, set())


def test_the_registered_holder_keeps_the_id_when_an_earlier_container_asks():
    claims = ServiceIdClaims()
    claims.claim("web2", ["shop-1"], SECOND)
    claims.registered("web2", "shop-1")
    assert claims.claim("web1", ["shop-1"], FIRST, registered_ids=[]) == ({"shop-1": "web2"}, set())


def test_an_earlier_new_claimant_takes_an_id_nobody_is_registered_under_yet():
    claims = ServiceIdClaims()
    claims.claim("web2", ["shop-1"], SECOND)
    assert claims.claim("web1", ["shop-1"], FIRST) == ({"shop-1": "web1"}, {"web2"})


def test_dropping_an_id_from_the_claims_moves_it():
    claims = ServiceIdClaims()
    claims.claim("web1", ["shop-1", "x"], FIRST)
    claims.claim("web2", ["shop-1"], SECOND)
    assert claims.claim("web1", ["x"], FIRST) == ({"x": "web1"}, {"web2"})


def test_released_containers_leave_nothing_behind():
    claims = ServiceIdClaims()
    for index in range(100):
        claims.claim(f"web{index}", [f"id{index}", "shared"], claim_order("2026-11-29T15:40:00Z", f"{index:03}"))
    for index in range(100):
        claims.release(f"web{index}")
    assert claims.size() == (0, 0)
