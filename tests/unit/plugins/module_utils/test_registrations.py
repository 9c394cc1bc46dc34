# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._registrations import (
    DIGEST_META,
    DRAINED,
    KEEP,
    REMOVE,
    ROUTE,
    add_health_check,
    consul_status,
    container_phase,
    deregister_on_exit,
    digests_match,
    docker_health_status,
    drains_on_kill,
    health_from_list_status,
    mark_passing,
    owned_services,
    plan_changes,
    probe_target,
    registration_digest,
    registrator_cleanup_ids,
    services_by_container,
    with_digest,
)

OWNER = "registrator:docker1"


def reg(sid="docker1:web_1:80", check=None, **extra):
    body = {"ID": sid, "Name": "www", "Address": "10.0.0.5", "Port": 80, "Tags": ["hello"],
            "Meta": {"autoproxy_owner": OWNER, "autoproxy_container": "web_1"}}
    if check is not None:
        body["Check"] = check
    body.update(extra)
    return body


def agent_entry(registration):
    """What /v1/agent/services answers for a registration."""
    return {"ID": registration["ID"], "Service": registration["Name"], "Meta": dict(registration["Meta"])}


def test_digest_is_stable_and_ignores_status_and_itself():
    base = reg(check={"HTTP": "http://10.0.0.5:80/", "Interval": "5s"})
    passing = mark_passing(base)
    assert registration_digest(base) == registration_digest(passing)
    assert registration_digest(with_digest(base)) == registration_digest(base)
    assert with_digest(base)["Meta"][DIGEST_META] == registration_digest(base)
    assert "Status" not in base["Check"]  # copies, never the caller's dict


@pytest.mark.parametrize("change", [
    {"Port": 81}, {"Address": "10.0.0.6"}, {"Tags": ["world"]}, {"Name": "web"},
    {"Check": {"HTTP": "http://10.0.0.5:80/health", "Interval": "5s"}},
])
def test_digest_changes_with_the_definition(change):
    base = reg(check={"HTTP": "http://10.0.0.5:80/", "Interval": "5s"})
    assert registration_digest(base) != registration_digest(dict(base, **change))


def test_plan_registers_only_new_or_changed_and_removes_the_rest():
    same, changed, new = with_digest(reg("a")), with_digest(reg("b")), with_digest(reg("c"))
    have = {"a": agent_entry(same), "b": agent_entry(with_digest(reg("b", Port=99))), "z": agent_entry(reg("z"))}
    to_register, to_deregister = plan_changes([same, changed, new], have)
    assert [r["ID"] for r in to_register] == ["b", "c"]
    assert to_deregister == ["z"]
    assert digests_match([same], {"a": agent_entry(same)})
    assert not digests_match([same], {})
    assert not digests_match([], {"a": agent_entry(same)})


def test_owned_services_and_grouping_by_container():
    services = {
        "a": {"Meta": {"autoproxy_owner": OWNER, "autoproxy_container": "web_1"}},
        "b": {"Meta": {"autoproxy_owner": OWNER, "autoproxy_container": "web_2"}},
        "c": {"Meta": {"autoproxy_owner": "registrator:other"}},
        "consul": {"Meta": None},
    }
    owned = owned_services(services, OWNER)
    assert sorted(owned) == ["a", "b"]
    assert {k: sorted(v) for k, v in services_by_container(owned).items()} == {"web_1": ["a"], "web_2": ["b"]}


HEALTHY = {"Config": {"Healthcheck": {"Test": ["CMD", "true"]}}, "State": {"Health": {"Status": "healthy"}}}


@pytest.mark.parametrize("inspect, expected", [
    (HEALTHY, "healthy"),
    ({"Config": {"Healthcheck": {"Test": ["CMD", "true"]}}, "State": {}}, "starting"),
    ({"Config": {"Healthcheck": {"Test": ["NONE"]}}, "State": {"Health": {"Status": "healthy"}}}, None),
    ({"Config": {}, "State": {}}, None),
    (None, None),
])
def test_docker_health_status(inspect, expected):
    assert docker_health_status(inspect) == expected


@pytest.mark.parametrize("text, expected", [
    ("Up 5 minutes (healthy)", "healthy"), ("Up 2 seconds (health: starting)", "starting"),
    ("Up 1 hour (unhealthy)", "unhealthy"), ("Up 3 minutes", None), (None, None),
])
def test_health_from_list_status(text, expected):
    assert health_from_list_status(text) == expected


def test_only_healthy_is_passing():
    assert [consul_status(s) for s in ("healthy", "starting", "unhealthy", "odd")] == ["passing"] + ["critical"] * 3


def test_health_check_joins_the_declared_check():
    body = add_health_check(reg(check={"TCP": "10.0.0.5:80", "Interval": "5s"}), "24h", "critical")
    assert "Check" not in body
    assert body["Checks"] == [
        {"TCP": "10.0.0.5:80", "Interval": "5s"},
        {"CheckID": "autoproxy-docker-health:docker1:web_1:80", "Name": "Docker HEALTHCHECK", "TTL": "24h",
         "Status": "critical"},
    ]
    only = add_health_check(reg(), "1h", "passing")
    assert [c["CheckID"] for c in only["Checks"]] == ["autoproxy-docker-health:docker1:web_1:80"]
    assert probe_target(only) is None  # the TTL check is Docker's, nothing to probe


@pytest.mark.parametrize("policy, state, expected", [
    ("always", {"Running": False, "ExitCode": 1}, True),
    ("on-success", None, True),
    ("on-success", {"Running": False, "ExitCode": 0}, True),
    ("on-success", {"Running": False, "ExitCode": 143}, True),
    ("on-success", {"Running": False, "ExitCode": 137}, True),
    ("on-success", {"Running": False, "ExitCode": 1}, False),
    ("on-success", {"Running": True, "ExitCode": 0}, False),
    ("on-success", {"Running": True, "Paused": True, "ExitCode": 0}, True),
])
def test_deregister_on_exit_follows_registrator(policy, state, expected):
    assert deregister_on_exit(policy, state) is expected


@pytest.mark.parametrize("signal_value, stop_signal, expected", [
    ("15", None, True), ("9", None, True), ("SIGTERM", None, True), ("2", None, True), ("3", None, True),
    ("1", None, False), ("10", None, False), ("SIGHUP", None, False), ("", None, False), (None, None, False),
    ("28", "SIGWINCH", True), ("28", "SIGTERM", False), ("bogus", "bogus", False),
])
def test_drains_on_signals_that_end_the_container(signal_value, stop_signal, expected):
    assert drains_on_kill(signal_value, stop_signal) is expected


def test_registrator_cleanup_takes_only_this_hosts_dead_pattern_ids():
    services = {
        "docker1:gone_1:80": {"Meta": {}},
        "docker1:gone_1:53:udp": {},
        "docker1:alive_1:80": {},
        "docker2:gone_1:80": {},
        "docker1:ours_1:80": {"Meta": {"autoproxy_owner": OWNER}},
        "consul": {},
        "custom-id": {},
    }
    assert registrator_cleanup_ids(services, "docker1", {"alive_1"}, OWNER) == [
        "docker1:gone_1:53:udp", "docker1:gone_1:80"]


@pytest.mark.parametrize("check, expected", [
    ({"HTTP": "http://10.0.0.5:80/health", "Interval": "5s"},
     {"kind": "http", "url": "http://10.0.0.5:80/health", "method": "GET", "tls_skip_verify": False, "timeout": 1.0}),
    ({"HTTP": "https://10.0.0.5:443/", "Method": "HEAD", "TLSSkipVerify": True, "Timeout": "200ms"},
     {"kind": "http", "url": "https://10.0.0.5:443/", "method": "HEAD", "tls_skip_verify": True, "timeout": 0.2}),
    ({"TCP": "[2001:db8::5]:80", "Timeout": "1m"}, {"kind": "tcp", "host": "2001:db8::5", "port": 80, "timeout": 1.0}),
    ({"TTL": "30s"}, None),
    ({"Args": ["sh", "-c", "true"], "Interval": "5s"}, None),
    ({"HTTP": "http://10.0.0.5:80/", "Status": "passing"}, None),
])
def test_probe_target(check, expected):
    assert probe_target(reg(check=check)) == expected


def test_no_check_no_probe():
    assert probe_target(reg()) is None


def test_mark_passing_sets_the_declared_check_only():
    body = add_health_check(reg(check={"TCP": "10.0.0.5:80"}), "24h", "critical")
    passing = mark_passing(body)
    assert [c.get("Status") for c in passing["Checks"]] == ["passing", "critical"]
    assert mark_passing(reg(check={"TCP": "x:1"}))["Check"]["Status"] == "passing"
    assert mark_passing(reg()) == reg()


@pytest.mark.parametrize(("state", "draining", "have", "policy", "expected"), [
    ({"Running": True}, False, {}, "always", ROUTE),
    ({"Running": True}, True, {"x": {}}, "always", DRAINED),
    ({"Running": True, "Paused": True}, False, {"x": {}}, "always", REMOVE),
    ({"Running": False, "ExitCode": 1}, False, {"x": {}}, "on-success", KEEP),
    ({"Running": False, "ExitCode": 1}, False, {}, "on-success", REMOVE),
    ({"Running": False, "ExitCode": 0}, False, {"x": {}}, "on-success", REMOVE),
    (None, False, {"x": {}}, "on-success", REMOVE),
])
def test_container_phase(state, draining, have, policy, expected):
    assert container_phase(state, draining, have, policy) == expected
