# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._consul_service import (
    RegistrationError,
    desired_registration,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._containers import AgentOptions, container_services
from ansible_collections.autoproxy.stack.plugins.module_utils._durations import parse_duration, parse_duration_ns
from ansible_collections.autoproxy.stack.plugins.module_utils._registrations import probe_target

NS, US, MS, S = 1, 1_000, 1_000_000, 1_000_000_000
M, H = 60 * S, 3600 * S
MAX = (1 << 63) - 1

# Go's own table for time.ParseDuration (src/time/time_test.go), so the result is Go's to the nanosecond.
GO_VALID = [
    ("0", 0), ("5s", 5 * S), ("30s", 30 * S), ("1478s", 1478 * S),
    ("-5s", -5 * S), ("+5s", 5 * S), ("-0", 0), ("+0", 0),
    ("5.0s", 5 * S), ("5.6s", 5 * S + 600 * MS), ("5.s", 5 * S), (".5s", 500 * MS), ("1.0s", S), ("1.00s", S),
    ("1.004s", S + 4 * MS), ("1.0040s", S + 4 * MS), ("100.00100s", 100 * S + MS),
    ("10ns", 10 * NS), ("11us", 11 * US), ("12\u00b5s", 12 * US), ("12\u03bcs", 12 * US), ("13ms", 13 * MS),
    ("14s", 14 * S), ("15m", 15 * M), ("16h", 16 * H),
    ("3h30m", 3 * H + 30 * M), ("10.5s4m", 4 * M + 10 * S + 500 * MS), ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
    ("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS), ("39h9m14.425s", 39 * H + 9 * M + 14425 * MS),
    ("52763797000ns", 52763797000), ("0.3333333333333333333h", 20 * M),
    ("9007199254740993ns", (1 << 53) + 1),
    ("9223372036854775807ns", MAX), ("9223372036854775.807us", MAX), ("9223372036s854ms775us807ns", MAX),
    ("-9223372036854775808ns", -(1 << 63)), ("-9223372036854775.808us", -(1 << 63)),
    ("-9223372036s854ms775us808ns", -(1 << 63)), ("-2562047h47m16.854775808s", -(1 << 63)),
    ("0.100000000000000000000h", 6 * M), ("0.830103483285477580700h", 49 * M + 48 * S + 372539827 * NS),
    # and a few more that matter here
    ("1m0s", 60 * S), ("0s", 0), ("0.0001ns", 0), ("000010s", 10 * S), ("1.5h", 90 * M),
    ("0" * 5000 + "1s", S), ("1." + "0" * 5000 + "1s", S), ("1s" * 5000, 5000 * S),
]
GO_INVALID = [
    "", "3", "-", "s", ".", "-.", ".s", "+.s", "\x85\x85", "\xffff", "hello \xffff world", "\ufffd",
    "9223372036854775810ns", "9223372036854775808ns", "-9223372036854775809ns", "9223372036854775.808us",
    "9223372036854ms775us808ns",
    # and a few more that matter here
    "10", "00", "0.0", "10 s", " 10s", "10s ", "10sec", "1sm", "1hm", "1m5", "1s2", "1.5.5s", "--1s", "+-1s",
    "1S", "1e3s", "\u0661\u0660s", "\uff11s", "1" * 5000 + "s", "10s\n", None, 10, 1.5, b"10s", ["10s"],
]


@pytest.mark.parametrize(("text", "nanoseconds"), GO_VALID)
def test_reads_what_go_reads(text, nanoseconds):
    assert parse_duration_ns(text) == nanoseconds
    assert parse_duration(text) == nanoseconds / 1e9


@pytest.mark.parametrize("text", GO_INVALID)
def test_refuses_what_go_refuses(text):
    assert parse_duration_ns(text) is None
    assert parse_duration(text) is None


def test_equal_durations_are_equal_to_the_nanosecond():
    # Seconds as floats would make 0.3s and 300ms differ in the last bit; nanoseconds do not.
    assert parse_duration_ns("0.3s") == parse_duration_ns("300ms") == parse_duration_ns("300000us")
    assert parse_duration_ns("1h30m") == parse_duration_ns("90m") == parse_duration_ns("1.5h")


# --------------------------------------------------------------------------------------------
# the callers: one parser, each with its own rule on which values it takes

def _container_check(env):
    container = {
        "Name": "/web_1",
        "Config": {"Image": "nginx", "Env": env, "ExposedPorts": {"80/tcp": {}}},
        "HostConfig": {"NetworkMode": "demo"},
        "NetworkSettings": {"Networks": {"demo": {"IPAddress": "172.18.0.5"}}},
        "State": {"Running": True},
    }
    registrations, warnings = container_services(container, AgentOptions(hostname="docker1"))
    return registrations[0].get("Check"), warnings


def _module_accepts(**check):
    base = dict.fromkeys(("id", "name", "http", "tcp", "ttl", "interval", "timeout",
                          "deregister_critical_service_after", "status"))
    base.update(check)
    params = dict.fromkeys(("name", "id", "address", "port", "tags", "meta"))
    params.update(name="web", checks=[base])
    try:
        desired_registration(params)
    except RegistrationError:
        return False
    return True


@pytest.mark.parametrize(
    ("text", "positive"),
    [("10s", True), ("1.5s", True), (".5s", True), ("5.s", True), ("300ms", True), ("1h30m", True),
     ("12\u03bcs", True), ("12\u00b5s", True), ("+10s", True), ("0.0001ns", False), ("0", False), ("0s", False),
     ("-1s", False), ("\u0661\u0660s", False), ("10", False), ("often", False)],
)
def test_interval_and_ttl_callers_agree(text, positive):
    """Consul refuses an interval or TTL that is not above zero: the module and the registrator both say so."""
    assert _module_accepts(tcp="h:1", interval=text) is positive
    assert _module_accepts(ttl=text) is positive
    check, _warnings = _container_check(["SERVICE_CHECK_TCP=1", f"SERVICE_CHECK_INTERVAL={text}"])
    assert (check["Interval"] == text) is positive
    check, _warnings = _container_check([f"SERVICE_CHECK_TTL={text}"])
    assert (check == {"TTL": text}) is positive
    if positive:
        assert AgentOptions(hostname="h", default_check_interval=text).default_check_interval == text
    else:
        with pytest.raises(ValueError, match="default_check_interval"):
            AgentOptions(hostname="h", default_check_interval=text)


def test_module_takes_a_zero_timeout_and_deregister_delay_but_no_negative_one():
    # Zero is Consul's "default timeout" and "never deregister"; a negative value is a mistake.
    assert _module_accepts(tcp="h:1", interval="5s", timeout="0", deregister_critical_service_after="0s")
    assert not _module_accepts(tcp="h:1", interval="5s", timeout="-1s")
    assert not _module_accepts(tcp="h:1", interval="5s", deregister_critical_service_after="-90m")
    with pytest.raises(RegistrationError, match=r"checks\[0\].interval: '0s' must be above zero"):
        desired_registration({"name": "web", "checks": [{"tcp": "h:1", "interval": "0s"}]})
    with pytest.raises(RegistrationError, match=r"checks\[0\].timeout: '-1s' must be zero or more"):
        desired_registration({"name": "web", "checks": [{"tcp": "h:1", "interval": "1s", "timeout": "-1s"}]})


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [(None, 1.0), ("200ms", 0.2), (".25s", 0.25), ("250\u03bcs", 0.00025), ("1m", 1.0), ("0s", 1.0), ("-1s", 1.0),
     ("junk5s", 1.0), ("5 s", 1.0)],
)
def test_probe_timeout_is_the_checks_capped_or_consuls_default(timeout, expected):
    check = {"TCP": "10.0.0.5:80", "Interval": "5s"}
    if timeout is not None:
        check["Timeout"] = timeout
    target = probe_target({"ID": "x", "Check": check}, cap=1.0)
    assert target["timeout"] == pytest.approx(expected)
