# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registrator agent under faults, against the real Docker engine and a real Consul.

After each fault (the agent killed with SIGKILL while containers start and stop, containers removed
while it is down, Consul restarted empty) Consul must hold exactly the registrations of the running
containers within 30 s: none stale, none missing. Also: Docker HEALTHCHECK as a health source, the
fast first probe, --deregister on-success, and the network choice.
"""

from __future__ import annotations

import threading
import time

import pytest
from support import (
    container_ip,
    container_logs,
    docker,
    http_get,
    owned_services,
    run_registrator,
    service_checks,
    wait_for,
)

pytestmark = pytest.mark.e2e

AGENT = "regfault"


@pytest.fixture(scope="module")
def site(resources, consul_factory, agent_image, images):
    network = resources.network("regfault")
    consul = consul_factory(network, "regfault-consul")
    agent = run_registrator(resources, agent_image, network, consul, AGENT, "--resync=5")
    return {"network": network, "consul": consul, "agent": agent, "resources": resources, "images": images,
            "agent_image": agent_image}


def start_app(site, stem, env=None, options=(), agent=AGENT, args=()):
    env = dict({"SERVICE_NAME": "app"}, **(env or {}))
    return site["resources"].run(stem, site["images"]["demo_app_image"], *args, network=site["network"], env=env,
                                 labels={"aptest.reg": agent}, options=options)


def running_apps(agent=AGENT):
    names = docker("ps", "--filter", f"label=aptest.reg={agent}", "--format", "{{.Names}}").split()
    return {f"{agent}:{name}:80" for name in names}


def converged(consul, agent=AGENT):
    """Owned services == running containers' services (returns the set, or None while they differ)."""
    want = running_apps(agent)
    have = set(owned_services(consul, agent))
    return (want or {"(none)"}) if have == want else None


def test_kill_9_while_containers_start_and_stop_then_restart(site):
    consul, agent = site["consul"], site["agent"]
    first = [start_app(site, f"rf-a{i}") for i in range(4)]
    wait_for("the first apps registered", lambda: converged(consul) and len(owned_services(consul, AGENT)) == 4)

    # Containers start and stop while the agent is killed with SIGKILL in the middle of it.
    churn = threading.Thread(target=lambda: [start_app(site, f"rf-b{i}") for i in range(3)])
    churn.start()
    docker("kill", "-s", "KILL", agent)
    docker("stop", "-t", "1", first[0])
    docker("rm", "-f", first[1])  # removed while the agent is down: its die is never seen
    churn.join()
    start_app(site, "rf-c0")
    assert {f"{AGENT}:{first[1]}:80", f"{AGENT}:{first[0]}:80"} <= set(owned_services(consul, AGENT))

    docker("start", agent)
    seen = wait_for("0 stale and 0 missing after the restart", lambda: converged(consul), timeout=30)
    assert len(seen) == 6


def test_consul_restarted_empty_is_refilled(site):
    consul = site["consul"]
    wait_for("a converged start", lambda: converged(consul), timeout=30)
    want = running_apps()
    assert want
    consul.restart()  # a dev agent keeps nothing: it comes back empty
    started = time.monotonic()
    wait_for("every registration restored", lambda: converged(consul), timeout=30)
    print(f"restored {len(want)} registrations {time.monotonic() - started:.2f}s after Consul answered again")
    assert "Consul is back: reconciling now" in container_logs(site["agent"])


def test_services_deregistered_behind_its_back_come_back(site):
    consul = site["consul"]
    wait_for("a converged start", lambda: converged(consul), timeout=30)
    victim = sorted(running_apps())[0]
    consul.put(f"/v1/agent/service/deregister/{victim}")
    wait_for(f"{victim} back", lambda: victim in owned_services(consul, AGENT), timeout=30)


def test_docker_healthcheck_drives_the_consul_check(site):
    consul = site["consul"]
    name = start_app(site, "rf-health", env={"SERVICE_NAME": "healthy-app"},
                     options=("--health-cmd", "test ! -f /tmp/sick", "--health-interval", "1s",
                              "--health-retries", "1"))
    sid = f"{AGENT}:{name}:80"

    def status():
        checks = service_checks(consul, "healthy-app").get(sid, {})
        return [c["Status"] for c in checks.values()]

    wait_for("passing once Docker says healthy", lambda: status() == ["passing"], timeout=30)
    docker("exec", name, "touch", "/tmp/sick")
    wait_for("critical once Docker says unhealthy", lambda: status() == ["critical"], timeout=30)
    assert consul.health("healthy-app") and not consul.get("/v1/health/service/healthy-app?passing=1")
    docker("exec", name, "rm", "/tmp/sick")
    wait_for("passing again", lambda: status() == ["passing"], timeout=30)


def test_first_probe_routes_it_once_it_answers_and_never_before(site):
    consul = site["consul"]
    # The app answers 4 s after start; Consul's own check would first run at a random point of 60 s.
    name = start_app(site, "rf-late", env={"SERVICE_NAME": "late-app", "SERVICE_CHECK_HTTP": "/",
                                           "SERVICE_CHECK_INTERVAL": "60s"},
                     options=("--entrypoint", "sh"), args=("-c", "sleep 4; exec hello-world-entrypoint"))
    sid = f"{AGENT}:{name}:80"
    ip = container_ip(name, site["network"])
    answered_at = passing_at = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and passing_at is None:
        checks = service_checks(consul, "late-app").get(sid, {})
        passing = bool(checks) and all(c["Status"] == "passing" for c in checks.values())
        if passing:
            passing_at = time.monotonic()
            assert answered_at is not None, "passing before the app answered"
        if answered_at is None:
            try:
                if http_get(f"http://{ip}/", timeout=0.2)[0] == 200:
                    answered_at = time.monotonic()
            except OSError:
                pass
        time.sleep(0.02)
    logs = container_logs(site["agent"])
    assert passing_at is not None, f"never passing; agent log: {logs[-2000:]}"
    print(f"passing {passing_at - answered_at:.2f}s after the app first answered the test")
    assert f"{sid} ({name}) waits for its check to pass before it is registered" in logs
    assert f"registered {sid} (late-app {ip}:80) for {name} as passing" in logs


def test_deregister_on_success_keeps_a_crashed_container(site):
    consul = site["consul"]
    agent = run_registrator(site["resources"], site["agent_image"], site["network"], consul, "regonsucc",
                            "--deregister=on-success", "--resync=2")
    # Each app exits with $CODE only when told to, so both are surely registered first.
    script = ("-c", "hello-world-entrypoint & while [ ! -e /tmp/exit ]; do sleep 0.1; done; exit $CODE")
    crashed = start_app(site, "rf-crash", env={"CODE": "3"}, options=("--entrypoint", "sh"), args=script,
                        agent="regonsucc")
    clean = start_app(site, "rf-clean", env={"CODE": "0"}, options=("--entrypoint", "sh"), args=script,
                      agent="regonsucc")
    ids = {f"regonsucc:{crashed}:80", f"regonsucc:{clean}:80"}
    wait_for("both registered", lambda: ids <= set(owned_services(consul, "regonsucc")), timeout=30)
    for name in (crashed, clean):
        docker("exec", name, "touch", "/tmp/exit")
    wait_for("both exited", lambda: not docker("ps", "-q", "--filter", "label=aptest.reg=regonsucc"), timeout=30)
    wait_for("the clean exit deregistered", lambda: f"regonsucc:{clean}:80" not in owned_services(
        consul, "regonsucc"), timeout=30)
    time.sleep(5)  # two more reconciliation periods
    assert set(owned_services(consul, "regonsucc")) == {f"regonsucc:{crashed}:80"}
    docker("rm", "-f", crashed)
    wait_for("the removed crash deregistered", lambda: not owned_services(consul, "regonsucc"), timeout=30)
    docker("rm", "-f", agent)


def test_network_label_and_option_choose_the_address(site):
    consul, resources = site["consul"], site["resources"]
    other = resources.network("regfault-other")
    agent = run_registrator(resources, site["agent_image"], site["network"], consul, "regnet",
                            f"--network={site['network']}")
    by_option = start_app(site, "rf-net-opt", agent="regnet")
    by_label = start_app(site, "rf-net-label", agent="regnet")
    for name in (by_option, by_label):
        docker("network", "connect", other, name)
    docker("rm", "-f", by_label)
    by_label = resources.run("rf-net-label", site["images"]["demo_app_image"], network=other,
                             env={"SERVICE_NAME": "app"}, labels={"aptest.reg": "regnet", "autoproxy.network": other})
    docker("network", "connect", site["network"], by_label)
    want = {f"regnet:{by_option}:80": container_ip(by_option, site["network"]),
            f"regnet:{by_label}:80": container_ip(by_label, other)}
    wait_for("addresses from the chosen networks", lambda: {
        sid: svc["Address"] for sid, svc in owned_services(consul, "regnet").items()} == want, timeout=30)
    docker("rm", "-f", agent)
