# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Drain before stop, end to end: real Docker, Consul, registrator agent, proxy agent (HAProxy) and apps.

Under a steady request loop through the proxy, ``docker stop`` of one of three replicas must not
fail a single request: the registrator takes the replica out of Consul on the ``kill`` event, the
proxy stops sending it new requests, and the app finishes what it has.
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

AGENT = "regdrain"
HOST = "www.drain.test"


@pytest.fixture(scope="module")
def site(resources, consul_factory, agent_image, images):
    network = resources.network("regdrain")
    consul = consul_factory(network, "regdrain-consul")
    agent = run_registrator(resources, agent_image, network, consul, AGENT)
    port = free_port()
    proxy = resources.run("regdrain-proxy", agent_image, "proxy", f"--consul={consul.internal_url}",
                          "--http-port=8080", "--domains=test", network=network,
                          labels={"SERVICE_IGNORE": "true"}, options=("-p", f"127.0.0.1:{port}:8080"))
    replicas = [resources.run(f"rd-web{i}", images["demo_app_image"], network=network,
                              env={"SERVICE_NAME": "www", "SERVICE_TAGS": "drain", "SERVICE_CHECK_HTTP": "/",
                                   "SERVICE_CHECK_INTERVAL": "1s"},
                              labels={"aptest.reg": AGENT}) for i in range(3)]
    url = f"http://127.0.0.1:{port}/"
    wait_for("three replicas registered", lambda: len(owned_services(consul, AGENT)) == 3, timeout=60)
    wait_for("all three answering through the proxy", lambda: len(
        {http_get(url, HOST)[1] for _unused in range(12)}) == 3, timeout=60)
    return {"url": url, "replicas": replicas, "agent": agent, "proxy": proxy, "consul": consul}


def test_docker_stop_of_one_replica_fails_no_request(site):
    stop = threading.Event()
    results = []
    workers = [threading.Thread(target=request_loop, args=(site["url"], HOST, stop, results)) for _unused in range(4)]
    for worker in workers:
        worker.start()
    time.sleep(2)
    before = len(results)
    started = time.monotonic()
    docker("stop", site["replicas"][0])
    stopped_after = time.monotonic() - started
    time.sleep(2)
    stop.set()
    for worker in workers:
        worker.join()
    failures = [status for status in results if status != 200]
    print(f"{len(results)} requests ({len(results) - before} during and after the stop, which took "
          f"{stopped_after:.2f}s); failures: {failures[:10]}")
    assert "before it stops (signal 15)" in container_logs(site["agent"])
    assert len(owned_services(site["consul"], AGENT)) == 2
    assert not failures
