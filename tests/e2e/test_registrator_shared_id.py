# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Two running containers asking for one service ID (``SERVICE_ID=shop-1`` copied), end to end.

Real Docker, Consul, registrator agent, proxy agent (HAProxy) and apps. The container that started
first holds the ID, the other one is routed under ``shop-1:<its name>``, and a warning names both.
Under a steady request loop through the proxy, stopping either one fails no request: the survivor's
registration stays as it is all along (the agent's full pass is set to 120 s here, so nothing waits
for it), and a free ID goes to the next container that asks for it.
"""

from __future__ import annotations

import threading
import time

import pytest
from support import (
    container_logs,
    docker,
    free_port,
    http_get,
    owned_services,
    request_loop,
    run_registrator,
    wait_for,
)

pytestmark = pytest.mark.e2e

AGENT = "regsid"
HOST = "shop.ids.test"
ENV = {"SERVICE_NAME": "shop", "SERVICE_ID": "shop-1", "SERVICE_TAGS": "ids", "SERVICE_CHECK_HTTP": "/",
       "SERVICE_CHECK_INTERVAL": "1s"}


@pytest.fixture(scope="module")
def site(resources, consul_factory, agent_image, images):
    network = resources.network("regsid")
    consul = consul_factory(network, "regsid-consul")
    agent = run_registrator(resources, agent_image, network, consul, AGENT, "--resync=120")
    port = free_port()
    proxy = resources.run("regsid-proxy", agent_image, "proxy", f"--consul={consul.internal_url}",
                          "--http-port=8080", "--domains=test", network=network,
                          labels={"SERVICE_IGNORE": "true"}, options=("-p", f"127.0.0.1:{port}:8080"))

    def start(stem):
        return resources.run(stem, images["demo_app_image"], network=network, env=ENV, labels={"aptest.reg": AGENT})

    return {"url": f"http://127.0.0.1:{port}/", "agent": agent, "proxy": proxy, "consul": consul, "start": start}


def holders(consul):
    """Service ID -> the container name in its Meta, for this test's agent."""
    return {sid: svc["Meta"]["autoproxy_container"] for sid, svc in owned_services(consul, AGENT).items()}


def under_load(url, action, settle=2.0):
    """Run ``action`` while 4 clients send requests; returns (results, what action returned)."""
    stop = threading.Event()
    results = []
    workers = [threading.Thread(target=request_loop, args=(url, HOST, stop, results)) for _unused in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(settle)
    try:
        value = action()
        time.sleep(settle)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    return results, value


def test_first_started_holds_the_id_and_both_are_routed(site):
    consul = site["consul"]
    first = site["start"]("sid-a")
    wait_for("the first container registered as shop-1", lambda: holders(consul) == {"shop-1": first}, timeout=60)
    second = site["start"]("sid-b")
    want = {"shop-1": first, f"shop-1:{second}": second}
    wait_for("the second one under its fallback ID", lambda: holders(consul) == want, timeout=60)
    wait_for("both answering through the proxy", lambda: len(
        {http_get(site["url"], HOST)[1] for _unused in range(12)}) == 2, timeout=60)
    logs = container_logs(site["agent"])
    assert f"service ID 'shop-1' is also asked for by container '{first}'" in logs
    assert f"container '{second}'" in logs
    site.update(first=first, second=second)


def stop_and_watch(consul, name, want):
    """docker stop ``name``, then wait until Consul holds ``want``; seconds from the stop's start."""
    started = time.monotonic()
    docker("stop", name)
    wait_for(f"Consul holding {want}", lambda: holders(consul) == want, timeout=10, interval=0.02)
    return time.monotonic() - started


def test_stopping_the_holder_fails_no_request_to_the_survivor(site):
    consul, first, second = site["consul"], site["first"], site["second"]
    survivor = {f"shop-1:{second}": second}
    results, settled = under_load(site["url"], lambda: stop_and_watch(consul, first, survivor))
    failures = [status for status in results if status != 200]
    print(f"{len(results)} requests; only the survivor registered {settled:.2f}s after docker stop began; "
          f"failures: {failures[:10]}")
    assert not failures
    # Well before the full pass (120 s): the kill event did it, and the survivor was never touched.
    assert settled < 10
    assert holders(consul) == survivor
    assert f"registered shop-1:{second} " in container_logs(site["agent"])
    assert container_logs(site["agent"]).count(f"registered shop-1:{second} ") == 1


def test_a_free_id_goes_to_the_next_container_and_stopping_it_fails_no_request(site):
    consul, second = site["consul"], site["second"]
    third = site["start"]("sid-c")
    both = {f"shop-1:{second}": second, "shop-1": third}
    wait_for("the newcomer under the free ID", lambda: holders(consul) == both, timeout=60)
    wait_for("both answering through the proxy", lambda: len(
        {http_get(site["url"], HOST)[1] for _unused in range(12)}) == 2, timeout=60)
    results, settled = under_load(site["url"], lambda: stop_and_watch(consul, third, {f"shop-1:{second}": second}))
    failures = [status for status in results if status != 200]
    print(f"{len(results)} requests; settled {settled:.2f}s after docker stop began; failures: {failures[:10]}")
    assert not failures


def test_stopping_a_claimant_on_its_fallback_fails_no_request_and_leaves_the_holder(site):
    consul, second = site["consul"], site["second"]
    fourth = site["start"]("sid-d")
    fifth = site["start"]("sid-e")
    wait_for("one holder, one newcomer on its fallback", lambda: holders(consul) == {
        f"shop-1:{second}": second, "shop-1": fourth, f"shop-1:{fifth}": fifth}, timeout=60)
    results, settled = under_load(site["url"], lambda: stop_and_watch(consul, fifth, {
        f"shop-1:{second}": second, "shop-1": fourth}))
    failures = [status for status in results if status != 200]
    print(f"{len(results)} requests; settled {settled:.2f}s after docker stop began; failures: {failures[:10]}")
    assert not failures


def test_a_restarted_agent_keeps_who_holds_what(site):
    consul, agent = site["consul"], site["agent"]
    before = holders(consul)
    registered = container_logs(agent).count("INFO autoproxy.registrator: registered ")
    docker("restart", "-t", "2", agent)
    wait_for("the agent's first full pass", lambda: container_logs(agent).count("registrator agent started") == 2,
             timeout=30)
    time.sleep(3)
    assert holders(consul) == before
    assert container_logs(agent).count("INFO autoproxy.registrator: registered ") == registered
