# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registrator agent's keys and options against the real Docker engine and a real Consul.

One agent (from the agent image built from the working tree) watches one network; each case
starts a real container and asserts what Consul actually holds: name, ID, address, port, tags,
Meta, and the check (type, target and method as Consul's own check output shows them; Consul
1.8 does not return a check's interval in its API).
"""

from __future__ import annotations

import time

import pytest
from support import container_ip, container_logs, owned_services, run_registrator, service_checks, wait_for

pytestmark = pytest.mark.e2e

AGENT = "regkeys"
IMAGE_NAME = "hello-world"  # default service name: the image's base name


def case(stem, env=None, labels=None, options=(), expect=None, checks=None):
    return pytest.param(stem, env or {}, labels or {}, options, expect or {}, checks or {}, id=stem)


# expect: {port-part of the default ID or an explicit ID: {field: value}}; "{ip}" is the container's IP.
CASES = [
    case("defaults", expect={":80": {"Service": IMAGE_NAME, "Port": 80, "Tags": []}}),
    case("name-tags-meta",
         env={"SERVICE_NAME": "www", "SERVICE_TAGS": r"hello, world.dev,a\,b,hello", "SERVICE_VERSION": "1.2"},
         expect={":80": {"Service": "www", "Tags": ["hello", "world.dev", "a,b"], "Meta": {"version": "1.2"}}}),
    case("label-wins", env={"SERVICE_NAME": "from-env", "SERVICE_REGION": "env"},
         labels={"SERVICE_NAME": "from-label", "SERVICE_REGION": "label"},
         expect={":80": {"Service": "from-label", "Meta": {"region": "label"}}}),
    case("per-port", env={"SERVICE_NAME": "multi", "SERVICE_8080_NAME": "admin", "SERVICE_80_TAGS": "web",
                          "SERVICE_TAGS": "all", "SERVICE_8080_ROLE": "ops"},
         options=("--expose", "8080"),
         expect={":80": {"Service": "multi-80", "Port": 80, "Tags": ["web"]},
                 ":8080": {"Service": "admin", "Port": 8080, "Tags": ["all"], "Meta": {"role": "ops"}}}),
    case("port-ignore", env={"SERVICE_NAME": "half", "SERVICE_8080_IGNORE": "1"}, options=("--expose", "8080"),
         expect={":80": {"Service": "half-80"}}),
    case("ignore", env={"SERVICE_NAME": "hidden", "SERVICE_IGNORE": "true"}, expect={}),
    case("udp", env={"SERVICE_NAME": "web", "SERVICE_5353_NAME": "dns"}, options=("--expose", "5353/udp"),
         expect={":80": {"Service": "web-80"}, ":5353:udp": {"Service": "dns", "Port": 5353, "Tags": ["udp"]}}),
    case("custom-id", env={"SERVICE_NAME": "idd", "SERVICE_ID": "my-custom-id"},
         expect={"my-custom-id": {"Service": "idd"}}),
    case("check-http", env={"SERVICE_NAME": "chttp", "SERVICE_CHECK_HTTP": "/", "SERVICE_CHECK_HTTP_METHOD": "head",
                            "SERVICE_CHECK_INTERVAL": "1s", "SERVICE_CHECK_TIMEOUT": "2s"},
         expect={":80": {"Service": "chttp"}},
         checks={":80": [("http", "passing", "HTTP HEAD http://{ip}:80/")]}),
    case("check-https", env={"SERVICE_NAME": "chttps", "SERVICE_CHECK_HTTPS": "/secure",
                             "SERVICE_CHECK_TLS_SKIP_VERIFY": "true", "SERVICE_CHECK_INTERVAL": "1s"},
         expect={":80": {"Service": "chttps"}},
         checks={":80": [("http", "critical", "https://{ip}:80/secure")]}),
    case("check-tcp", env={"SERVICE_NAME": "ctcp", "SERVICE_CHECK_TCP": "true", "SERVICE_CHECK_INTERVAL": "1s"},
         expect={":80": {"Service": "ctcp"}},
         checks={":80": [("tcp", "passing", "TCP connect {ip}:80: Success")]}),
    case("check-ttl-initial", env={"SERVICE_NAME": "cttl", "SERVICE_CHECK_TTL": "10m",
                                   "SERVICE_CHECK_INITIAL_STATUS": "warning",
                                   "SERVICE_CHECK_DEREGISTER_AFTER": "10m"},
         expect={":80": {"Service": "cttl"}}, checks={":80": [("ttl", "warning", "")]}),
    case("healthcheck", env={"SERVICE_NAME": "dhealth"},
         options=("--health-cmd", "true", "--health-interval", "1s"),
         expect={":80": {"Service": "dhealth"}},
         checks={":80": [("ttl", "passing", "Docker health status: healthy")]}),
    case("bad-values", env={"SERVICE_NAME": "badvals", "SERVICE_TAGS": "ok", "SERVICE_CHECK_HTTP": "/",
                            "SERVICE_CHECK_INTERVAL": "soon", "SERVICE_99999_NAME": "x", "SERVICE_BAD.KEY": "v"},
         expect={":80": {"Service": "badvals", "Tags": ["ok"], "Meta": {}}},
         checks={":80": [("http", "passing", "HTTP GET http://{ip}:80/")]}),
    case("bad-name", env={"SERVICE_NAME": "no spaces/allowed"}, expect={}),
]


def expected_id(container, key):
    return key if not key.startswith(":") else f"{AGENT}:{container}{key}"


def services_of(consul, container):
    return {sid: svc for sid, svc in owned_services(consul, AGENT).items()
            if svc["Meta"]["autoproxy_container"] == container}


@pytest.fixture(scope="module")
def stack(resources, consul_factory, agent_image, images):
    network = resources.network("regkeys")
    consul = consul_factory(network, "regkeys-consul")
    agent = run_registrator(resources, agent_image, network, consul, AGENT, "--resync=2")
    started = {}
    for stem, env, labels, options, _expect, _checks in (p.values for p in CASES):
        name = resources.run(f"rk-{stem}", images["demo_app_image"], network=network, env=env,
                             labels=dict(labels, **{"aptest.reg": AGENT}), options=options)
        started[stem] = (name, container_ip(name, network))
    wanted = {expected_id(started[p.values[0]][0], key) for p in CASES for key in p.values[4]}
    wait_for("every expected service", lambda: wanted <= set(owned_services(consul, AGENT)), timeout=60)
    # Two more reconciliation periods: time enough to (wrongly) register what must not be.
    time.sleep(4)
    return consul, agent, started


@pytest.mark.parametrize("stem, env, labels, options, expect, checks", CASES)
def test_consul_holds_what_the_keys_say(stack, stem, env, labels, options, expect, checks):
    consul, _agent, started = stack
    container, ip = started[stem]
    mine = services_of(consul, container)
    assert set(mine) == {expected_id(container, key) for key in expect}
    for key, fields in expect.items():
        service = mine[expected_id(container, key)]
        assert service["Address"] == ip
        for field, value in fields.items():
            if field == "Meta":
                meta = {k: v for k, v in service["Meta"].items() if not k.startswith("autoproxy_")}
                assert meta == value
            else:
                assert service[field] == value
        assert service["Meta"]["autoproxy_owner"] == f"registrator:{AGENT}"
        assert len(service["Meta"]["autoproxy_digest"]) == 16
    for key, wanted_checks in checks.items():
        sid = expected_id(container, key)
        service_name = mine[sid]["Service"]

        def settled(sid=sid, service_name=service_name, wanted_checks=wanted_checks):
            found = service_checks(consul, service_name).get(sid, {})
            got = sorted((c["Type"], c["Status"], c["Output"]) for c in found.values())
            ok = len(got) == len(wanted_checks) and all(
                t == wt and s == ws and wo.format(ip=ip) in o
                for (t, s, o), (wt, ws, wo) in zip(got, sorted(wanted_checks)))
            return got if ok else None

        wait_for(f"{stem}'s checks {wanted_checks}", settled, timeout=30)


def test_bad_input_is_logged_with_container_and_key(stack):
    _consul, agent, started = stack
    logs = container_logs(agent)
    bad, _ip = started["bad-values"]
    assert f"container '{bad}': SERVICE_CHECK_INTERVAL='soon' ignored" in logs
    assert f"container '{bad}': SERVICE_99999_NAME='x' ignored" in logs
    assert f"container '{bad}': SERVICE_BAD.KEY='v' dropped" in logs
    bad_name, _ip = started["bad-name"]
    assert f"container '{bad_name}': SERVICE_NAME='no spaces/allowed' gives an invalid service name" in logs


def test_periodic_passes_never_re_register_an_unchanged_service(stack):
    consul, agent, started = stack
    container, _ip = started["defaults"]
    sid = expected_id(container, ":80")
    before = consul.get(f"/v1/catalog/service/{IMAGE_NAME}")
    time.sleep(5)  # two and a half --resync=2 periods
    after = consul.get(f"/v1/catalog/service/{IMAGE_NAME}")
    assert [e["ModifyIndex"] for e in before if e["ServiceID"] == sid] == \
        [e["ModifyIndex"] for e in after if e["ServiceID"] == sid]
    assert container_logs(agent).count(f"registered {sid} ") == 1
