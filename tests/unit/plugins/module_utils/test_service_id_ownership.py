# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The service-ID ownership rule: the running container that started first holds a contested ID."""

from __future__ import annotations

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._service_id_ownership import (
    HELD,
    NEW,
    ON_FALLBACK,
    assign_service_ids,
    claim_order,
    claim_standing,
    fallback_service_id,
    id_holder,
)


def reg(sid, name="shop"):
    return {"ID": sid, "Name": name, "Address": "10.0.0.5", "Port": 80, "Tags": [], "Meta": {}}


@pytest.mark.parametrize(("earlier", "later"), [
    # Docker cuts trailing zeros of the fraction, so text order would put .12345 after .123456789.
    ("2026-11-29T15:40:52.12345Z", "2026-11-29T15:40:52.123456789Z"),
    ("2026-11-29T15:40:52Z", "2026-11-29T15:40:52.000000001Z"),
    ("2026-11-29T15:40:52.9Z", "2026-11-29T15:40:53.1Z"),
    ("2026-11-29T15:40:52Z", "0001-01-01T00:00:00Z"),   # never started: sorts last
    ("2026-11-29T15:40:52Z", None),
    ("2026-11-29T15:40:52Z", "yesterday"),
])
def test_claim_order_follows_the_start_time(earlier, later):
    assert claim_order(earlier, "b" * 64) < claim_order(later, "a" * 64)


def test_equal_start_times_are_ordered_by_container_id():
    assert claim_order("2026-11-29T15:40:52Z", "a1") < claim_order("2026-11-29T15:40:52Z", "b2")


def at(minute, standing=NEW, container_id="c"):
    return standing, claim_order(f"2026-11-29T15:{minute:02}:00Z", container_id)


def test_a_free_id_goes_to_the_container_that_started_first():
    claimants = {"shop_web_2": at(41, container_id="b"), "shop_web_1": at(40), "shop_web_3": at(42, container_id="a")}
    assert id_holder(claimants) == "shop_web_1"
    del claimants["shop_web_1"]
    assert id_holder(claimants) == "shop_web_2"
    assert id_holder({}) is None


def test_the_registered_holder_keeps_the_id_against_an_earlier_newcomer():
    # An ID never moves between running containers: its route would change address under the proxy.
    assert id_holder({"late": at(50, HELD), "early_but_paused_before": at(10)}) == "late"


def test_claimants_on_their_fallback_never_take_the_id_over():
    assert id_holder({"web2": at(41, ON_FALLBACK)}) is None
    assert id_holder({"web2": at(41, ON_FALLBACK), "web3": at(42)}) == "web3"


def test_standing_comes_from_the_container_registrations_in_consul():
    assert claim_standing("shop-1", "web2", ["shop-1", "x"]) == HELD
    assert claim_standing("shop-1", "web2", ["shop-1:web2"]) == ON_FALLBACK
    assert claim_standing("shop-1", "web2", ["shop-1:web3"]) == NEW


def test_ids_held_elsewhere_get_the_fallback_id_and_a_warning_naming_both():
    regs = [reg("shop-1"), reg("shop-admin", "admin")]
    result, warnings = assign_service_ids(regs, "shop_web_2", {"shop-1": "shop_web_1", "shop-admin": "shop_web_2"})
    assert [r["ID"] for r in result] == [fallback_service_id("shop-1", "shop_web_2"), "shop-admin"]
    assert result[0]["ID"] == "shop-1:shop_web_2"
    assert len(warnings) == 1
    assert "'shop_web_1'" in warnings[0] and "'shop_web_2'" in warnings[0] and "'shop-1'" in warnings[0]
    assert regs[0]["ID"] == "shop-1"  # input unchanged


def test_a_container_on_its_fallback_stays_there_when_the_holder_is_gone():
    result, warnings = assign_service_ids([reg("shop-1")], "shop_web_2", {"shop-1": None})
    assert [r["ID"] for r in result] == ["shop-1:shop_web_2"]
    assert warnings == []


def test_the_holder_and_uncontested_ids_keep_their_ids():
    regs = [reg("shop-1"), reg("other")]
    result, warnings = assign_service_ids(regs, "shop_web_1", {"shop-1": "shop_web_1"})
    assert result == regs
    assert warnings == []
