# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._consul_service import (
    NOTES_MARKER,
    RegistrationError,
    check_notes,
    current_registration,
    desired_registration,
    differences,
    merged_registration,
    registration_body,
    view,
)

# The shapes Consul 1.8.7 answers /v1/agent/service/<id> and /v1/agent/checks with (captured from a real agent).
AGENT_SERVICE = {
    "ID": "web1", "Service": "web", "Tags": ["a"], "Meta": {"k": "v"}, "Port": 80, "Address": "",
    "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": False, "ContentHash": "8b8cd10e1daabf4",
}


def agent_check(check_id, kind, notes="", service_id="web1", name="Service 'web' check", status="critical"):
    return {"Node": "n1", "CheckID": check_id, "Name": name, "Status": status, "Notes": notes, "Output": "",
            "ServiceID": service_id, "ServiceName": "web", "ServiceTags": ["a"], "Type": kind, "Definition": {},
            "CreateIndex": 0, "ModifyIndex": 0}


def params(**given):
    base = dict.fromkeys(("name", "id", "address", "port", "tags", "meta", "checks"))
    base.update(given)
    return base


def check(**given):
    base = dict.fromkeys(("id", "name", "http", "tcp", "ttl", "interval", "timeout",
                          "deregister_critical_service_after", "status"))
    base.update(given)
    return base


def test_desired_holds_only_the_given_keys_and_defaults_the_id():
    assert desired_registration(params(name="web", port=80)) == {"name": "web", "id": "web", "port": 80}


def test_desired_turns_meta_numbers_into_strings_and_rejects_other_values():
    assert desired_registration(params(name="web", meta={"n": 3, "f": 1.5}))["meta"] == {"n": "3", "f": "1.5"}
    with pytest.raises(RegistrationError, match="meta 'b'"):
        desired_registration(params(name="web", meta={"b": True}))


def test_desired_check_ids_follow_consuls_own_defaults():
    one = desired_registration(params(name="web", checks=[check(ttl="30s")]))
    assert one["checks"][0]["id"] == "service:web"
    two = desired_registration(params(name="web", id="w1", checks=[check(ttl="30s"), check(tcp="h:1", interval="5s")]))
    assert [c["id"] for c in two["checks"]] == ["service:w1:1", "service:w1:2"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (check(), "exactly one of http, tcp or ttl"),
        (check(http="http://x/", tcp="x:1", interval="1s"), "exactly one of http, tcp or ttl"),
        (check(http="http://x/"), "needs an interval"),
        (check(tcp="x:1", interval="often"), r"checks\[0\].interval: 'often' is not a duration"),
        (check(ttl="30s", interval="10s"), "ttl check takes no interval"),
        (check(ttl="half an hour"), r"checks\[0\].ttl"),
        (check(ttl="0s"), r"checks\[0\].ttl: '0s' must be above zero"),
        (check(http="http://x/", interval="0"), r"checks\[0\].interval: '0' must be above zero"),
        (check(tcp="x:1", interval="1s", timeout="-2s"), r"checks\[0\].timeout: '-2s' must be zero or more"),
    ],
)
def test_desired_rejects_checks_consul_cannot_run(raw, message):
    with pytest.raises(RegistrationError, match=message):
        desired_registration(params(name="web", checks=[raw]))


def test_desired_rejects_duplicate_check_ids():
    with pytest.raises(RegistrationError, match="duplicate check ids c"):
        desired_registration(params(name="web", checks=[check(id="c", ttl="1s"), check(id="c", ttl="2s")]))


def test_current_reads_definitions_from_the_notes_it_wrote():
    notes = check_notes({"http": "http://x/", "interval": "10s"})
    current = current_registration(AGENT_SERVICE, {"c1": agent_check("c1", "http", notes)})
    assert current["checks"] == [{"id": "c1", "name": "Service 'web' check", "type": "http", "status": "critical",
                                  "definition_known": True, "http": "http://x/", "interval": "10s"}]


def test_current_keeps_only_this_services_checks_and_marks_foreign_ones_unknown():
    checks = {"c1": agent_check("c1", "tcp"), "other": agent_check("other", "ttl", service_id="db")}
    current = current_registration(AGENT_SERVICE, checks)
    assert [c["id"] for c in current["checks"]] == ["c1"]
    assert current["checks"][0]["definition_known"] is False


def test_current_reads_a_filled_definition_as_newer_consul_returns_it():
    held = agent_check("c1", "tcp")
    held["Definition"] = {"TCP": "h:1", "Interval": "5s", "Timeout": "1s"}
    current = current_registration(AGENT_SERVICE, {"c1": held})
    assert current["checks"][0]["tcp"] == "h:1" and current["checks"][0]["definition_known"]


def test_nothing_differs_when_the_given_keys_match():
    current = current_registration(AGENT_SERVICE, {})
    assert differences(current, {"id": "web1", "name": "web", "port": 80}) == []


def test_only_the_given_keys_are_compared():
    current = current_registration(AGENT_SERVICE, {})
    # tags and meta are not given, so their values on the agent do not matter
    assert differences(current, {"id": "web1", "name": "web", "port": 81}) == ["port"]


def test_durations_compare_by_value():
    notes = check_notes({"http": "http://x/", "interval": "1m0s", "timeout": "2s"})
    current = current_registration(AGENT_SERVICE, {"c1": agent_check("c1", "http", notes)})
    wanted = {"id": "web1", "checks": [{"id": "c1", "http": "http://x/", "interval": "60s"}]}
    assert differences(current, wanted) == []
    wanted["checks"][0]["timeout"] = "3s"
    assert differences(current, wanted) == ["checks[c1].timeout"]
    wanted["checks"][0]["timeout"] = "2000\u03bcs"
    assert differences(current, wanted) == ["checks[c1].timeout"]
    wanted["checks"][0]["timeout"] = "2000ms"
    assert differences(current, wanted) == []


def test_check_differences_name_new_removed_unreadable_and_retyped_checks():
    checks = {
        "known": agent_check("known", "ttl", check_notes({"ttl": "30s"})),
        "foreign": agent_check("foreign", "http"),
        "extra": agent_check("extra", "ttl", check_notes({"ttl": "1s"})),
    }
    current = current_registration(AGENT_SERVICE, checks)
    wanted = {"id": "web1", "checks": [
        {"id": "known", "tcp": "h:1", "interval": "5s"},
        {"id": "foreign", "http": "http://x/", "interval": "5s"},
        {"id": "new", "ttl": "5s"},
    ]}
    assert differences(current, wanted) == [
        "checks[known].type",
        "checks[foreign] (definition not readable from Consul)",
        "checks[new] (new)",
        "checks[extra] (removed)",
    ]


def test_a_missing_service_differs_in_every_given_key():
    assert differences(None, {"id": "w", "name": "w", "port": 1}) == ["id", "name", "port"]


def test_merge_keeps_what_was_not_asked_for():
    notes = check_notes({"http": "http://x/", "interval": "10s", "timeout": "2s"})
    current = current_registration(AGENT_SERVICE, {"c1": agent_check("c1", "http", notes, name="hc")})
    merged = merged_registration(current, {"id": "web1", "port": 81,
                                           "checks": [{"id": "c1", "http": "http://x/", "interval": "20s"}]})
    assert merged["tags"] == ["a"] and merged["meta"] == {"k": "v"} and merged["port"] == 81
    assert merged["checks"] == [{"id": "c1", "name": "hc", "http": "http://x/", "interval": "20s", "timeout": "2s"}]


def test_body_sends_checks_only_when_asked_and_stores_their_definition():
    current = current_registration(AGENT_SERVICE, {"c1": agent_check("c1", "ttl", check_notes({"ttl": "5s"}))})
    untouched = registration_body(merged_registration(current, {"id": "web1", "port": 81}), send_checks=False)
    assert "Checks" not in untouched
    assert untouched == {"ID": "web1", "Name": "web", "Port": 81, "Tags": ["a"], "Meta": {"k": "v"},
                         "Weights": {"Passing": 1, "Warning": 1}}
    desired = desired_registration(params(id="web1", name="web", checks=[check(ttl="9s", status="passing")]))
    body = registration_body(merged_registration(current, desired), send_checks=True)
    assert body["Checks"] == [{"CheckID": "service:web1", "Name": "Service 'web' check", "TTL": "9s",
                               "Status": "passing", "Notes": NOTES_MARKER + '{"ttl":"9s"}'}]


def test_view_shows_option_keys_only():
    current = current_registration(AGENT_SERVICE, {"c1": agent_check("c1", "ttl", check_notes({"ttl": "5s"}))})
    assert view(current) == {"id": "web1", "name": "web", "address": "", "port": 80, "tags": ["a"],
                             "meta": {"k": "v"}, "checks": [{"id": "c1", "name": "Service 'web' check", "ttl": "5s"}]}
    assert view(None) == {}
