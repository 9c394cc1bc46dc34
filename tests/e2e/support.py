# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helpers for tests against the real Docker engine, Consul and HAProxy.

Every resource a test makes carries the label ``autoproxy.stack.test=<run id>`` and is removed
at the end of the session, also on failure. Images come from AUTOPROXY_IMAGE_VARS (written by
images/select-images): the offline kit's on a host without a registry.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUN_ID = uuid.uuid4().hex[:8]
TEST_LABEL = "autoproxy.stack.test"
DEFAULT_IMAGES = {
    "consul_image": "hashicorp/consul:1.20",
    "demo_app_image": "tutum/hello-world:latest",
    "agent_image_base": "debian:trixie-slim",
}


def docker(*args, check=True, timeout=300):
    """Run the docker CLI; return its stdout (stripped)."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def wait_for(what, probe, timeout=30.0, interval=0.1):
    """Poll probe() until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, ValueError, RuntimeError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last seen: {last!r}")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url, host=None, timeout=5.0):
    """(status, body) of a GET; HTTP errors are answers too."""
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def container_ip(name, network):
    return docker("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}", name)


def read_image_vars():
    """The image names to use: AUTOPROXY_IMAGE_VARS (flat `key: value` YAML) over the defaults."""
    images = dict(DEFAULT_IMAGES)
    path = os.environ.get("AUTOPROXY_IMAGE_VARS")
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                key, sep, value = line.partition(":")
                if sep and not line.startswith(("#", " ")) and key.strip() in images:
                    images[key.strip()] = value.strip().strip("'\"")
    return images


class Resources:
    """Creates labelled containers and networks for one test session and removes them all."""

    def __init__(self):
        self.label = f"{TEST_LABEL}={RUN_ID}"

    def name(self, stem):
        return f"aptest-{RUN_ID}-{stem}"

    def network(self, stem):
        name = self.name(stem)
        docker("network", "create", "--label", self.label, name)
        return name

    def run(self, stem, image, *args, network=None, env=None, labels=None, options=()):
        """docker run -d; returns the container name. ``args`` go after the image."""
        name = self.name(stem)
        cmd = ["run", "-d", "--name", name, "--label", self.label]
        if network:
            cmd += ["--network", network]
        for key, value in (env or {}).items():
            cmd += ["-e", f"{key}={value}"]
        for key, value in (labels or {}).items():
            cmd += ["--label", f"{key}={value}"]
        docker(*cmd, *options, image, *args)
        return name

    def cleanup(self):
        ids = docker("ps", "-aq", "--filter", f"label={self.label}", check=False).split()
        if ids:
            docker("rm", "-f", "-v", *ids, check=False)
        nets = docker("network", "ls", "-q", "--filter", f"label={self.label}", check=False).split()
        if nets:
            docker("network", "rm", *nets, check=False)


class Consul:
    """A real Consul agent (dev mode, in memory) in a container, its API published on loopback."""

    def __init__(self, resources, images, network, stem="consul"):
        self.port = free_port()
        self.container = resources.run(
            stem, images["consul_image"], "agent", "-dev", "-ui", "-client=0.0.0.0",
            network=network, labels={"SERVICE_IGNORE": "true"},
            options=("-p", f"127.0.0.1:{self.port}:8500", "--network-alias", stem),
        )
        self.network = network
        self.url = f"http://127.0.0.1:{self.port}"
        self.internal_url = f"http://{stem}:8500"
        self.wait_ready()

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def put(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="PUT")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read()

    def wait_ready(self, timeout=60):
        wait_for("Consul to elect a leader", lambda: self.get("/v1/status/leader"), timeout=timeout)

    def restart(self):
        """A dev agent keeps everything in memory: a restart comes back empty."""
        docker("restart", "-t", "1", self.container)
        self.wait_ready()

    def agent_services(self):
        return self.get("/v1/agent/services")

    def health(self, service):
        return self.get(f"/v1/health/service/{service}")


# ---- registrator agent helpers (appended for tests/e2e/test_registrator_*.py)

DOCKER_SOCKET_MOUNT = ("-v", "/var/run/docker.sock:/var/run/docker.sock")


def run_registrator(resources, image, network, consul, stem, *args):
    """The registrator agent from ``image`` on ``network``, managing only containers labelled aptest.reg=<stem>.

    Its --hostname is ``stem`` too, so service IDs and the owner mark are the test's own.
    """
    return resources.run(stem, image, "registrator", f"--consul={consul.internal_url}", "--internal",
                         f"--hostname={stem}", f"--filter-label=aptest.reg={stem}", *args,
                         network=network, labels={"SERVICE_IGNORE": "true"}, options=DOCKER_SOCKET_MOUNT)


def owned_services(consul, owner_stem):
    """Services in Consul carrying the owner mark of the registrator agent with --hostname=owner_stem."""
    return {sid: svc for sid, svc in consul.agent_services().items()
            if (svc.get("Meta") or {}).get("autoproxy_owner") == f"registrator:{owner_stem}"}


def service_checks(consul, service_name):
    """The Consul agent's checks of a service, keyed by service ID then check ID.

    The agent's view, because the catalog gets a new check output only when the status changes.
    """
    found = {}
    for check in consul.get("/v1/agent/checks").values():
        if check["ServiceName"] != service_name:
            continue
        found.setdefault(check["ServiceID"], {})[check["CheckID"]] = check
    return found


def container_logs(name):
    """A container's stdout and stderr (the agents log to stderr)."""
    proc = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout + proc.stderr


def request_loop(url, host, stop, results):
    """GET ``url`` with ``host`` until ``stop`` is set, appending each status (or the error) to ``results``."""
    while not stop.is_set():
        try:
            status, _body = http_get(url, host, timeout=5)
        except OSError as exc:
            status = repr(exc)
        results.append(status)
