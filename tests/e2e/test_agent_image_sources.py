# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The agent_image role, from the installed tarball, on a Docker host that is not the controller.

The target is a container with Python and the Docker SDK but none of the project's files, reached
through the community.docker.docker connection, and driving this machine's engine through its
socket: a role that read a controller path on the target would fail there. Each source is used:
the build context copied to the target, an archive made on the controller, and a registry (Debian's
docker-registry package in a container on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import subprocess

import playbook_runs
import pytest
import support
import yaml
from support import DOCKER_SOCKET_MOUNT, RUN_ID, docker, free_port, wait_for

pytestmark = pytest.mark.e2e

HASH_LABEL = "org.autoproxy.stack.agent-inputs"


@pytest.fixture(scope="module")
def target(resources, agent_image):
    """A Docker host without the project: the agent image's Python and Docker SDK, and the engine's socket."""
    return resources.run("agent-target", agent_image, "infinity",
                         options=("--entrypoint", "sleep", *DOCKER_SOCKET_MOUNT))


@pytest.fixture(scope="module")
def role(target, tmp_path_factory):
    """role(*ansible_playbook_args, expect_failure=False) -> output: autoproxy.stack.agent_image on the target."""
    workdir = tmp_path_factory.mktemp("agent-image")
    collections = playbook_runs.install_collection(workdir)
    inventory = workdir / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"target": {
        "ansible_connection": "community.docker.docker", "ansible_host": target,
        "ansible_python_interpreter": "/usr/bin/python3"}}}}))
    play = workdir / "agent_image.yml"
    play.write_text(yaml.safe_dump([{"name": "Provide the agent image", "hosts": "target", "gather_facts": False,
                                     "roles": ["autoproxy.stack.agent_image"]}]))
    config = workdir / "ansible.cfg"
    config.write_text(f"[defaults]\ncollections_path = {collections}\ninventory = {inventory}\n"
                      "retry_files_enabled = false\n")
    env = {"ANSIBLE_CONFIG": str(config)}

    def run(*args, expect_failure=False):
        return playbook_runs.run([str(play), *args], env=env, cwd=str(workdir), expect_failure=expect_failure)
    return run


@pytest.fixture
def image_name(request):
    """A tag of autoproxy/agent of this test's own, removed afterwards."""
    name = f"autoproxy/agent:aptest-{RUN_ID}-{request.node.name[5:30].replace('_', '-')}"
    yield name
    docker("image", "rm", "-f", name, check=False)


def image_args(reference):
    """-e agent_image_name=... -e agent_image_tag=... for an image reference REPOSITORY:TAG."""
    name, _sep, tag = reference.rpartition(":")
    return ["-e", f"agent_image_name={name}", "-e", f"agent_image_tag={tag}"]


def labels(image):
    return json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", image)) or {}


def test_build_on_the_target_from_a_copied_context(role, target, images, image_name):
    base = [*image_args(image_name), "-e", f"agent_image_base={images['agent_image_base']}"]
    output = role(*base)
    assert playbook_runs.recap(output, "target")["changed"] > 0
    assert "Building " + image_name in output
    built = labels(image_name)
    assert len(built.get(HASH_LABEL, "")) == 64, built
    assert docker("exec", target, "sh", "-c", "ls -d /tmp/*-autoproxy-agent 2>/dev/null || true") == "", \
        "the build context is removed from the target"
    counters = playbook_runs.recap(role(*base), "target")
    assert counters["changed"] == 0, counters
    counters = playbook_runs.recap(role(*base, "--check"), "target")
    assert counters["changed"] == 0, counters
    # Another base is another input: check mode reports the rebuild, and does not do it.
    output = role(*image_args(image_name), "-e", "agent_image_base=debian:some-other-base", "--check")
    assert playbook_runs.recap(output, "target")["changed"] == 1
    assert f"{image_name} would be built FROM debian:some-other-base" in output
    assert labels(image_name) == built


def test_base_image_never_pulled_is_named_when_missing(role, image_name):
    output = role(*image_args(image_name), "-e", "agent_image_base=autoproxy/no-such-base:1",
                  "-e", "agent_image_base_pull=never", expect_failure=True)
    assert "autoproxy/no-such-base:1" in output


def test_load_from_an_archive_made_on_the_controller(role, agent_image, image_name, tmp_path):
    docker("tag", agent_image, image_name)
    # As README shows it: docker save | gzip.
    archive = tmp_path / "agent.tar.gz"
    subprocess.run(f"docker save {image_name} | gzip > {archive}", shell=True, check=True, timeout=300)
    image_id = docker("image", "inspect", "-f", "{{.Id}}", image_name)
    docker("image", "rm", image_name)
    args = ["-e", "agent_image_source=archive", *image_args(image_name),
            "-e", f"agent_image_archive={archive}", "-e", f"agent_image_archive_dest=/tmp/{RUN_ID}-agent.tar.gz"]
    assert playbook_runs.recap(role(*args), "target")["changed"] > 0
    assert docker("image", "inspect", "-f", "{{.Id}}", image_name) == image_id
    counters = playbook_runs.recap(role(*args), "target")
    assert counters["changed"] == 0, counters
    counters = playbook_runs.recap(role(*args, "--check"), "target")
    assert counters["changed"] == 0, counters


def test_archive_source_needs_an_archive(role):
    output = role("-e", "agent_image_source=archive", expect_failure=True)
    assert "agent_image_archive" in output


@pytest.fixture(scope="module")
def registry(resources, images):
    """Debian's docker-registry (the distribution registry) in a container, published on 127.0.0.1."""
    tag = f"autoproxy/registry:aptest-{RUN_ID}"
    dockerfile = (f"FROM {images['agent_image_base']}\n"
                  "RUN apt-get update && apt-get install -y --no-install-recommends docker-registry "
                  "&& rm -rf /var/lib/apt/lists/*\n"
                  # Debian's config asks for htpasswd auth; this one serves anonymously (loopback only).
                  "RUN printf 'version: 0.1\\nstorage:\\n  filesystem:\\n    rootdirectory: /var/lib/docker-registry"
                  "\\nhttp:\\n  addr: :5000\\n' > /etc/docker/registry/test.yml\n"
                  'ENTRYPOINT ["docker-registry", "serve", "/etc/docker/registry/test.yml"]\n')
    docker_build(tag, dockerfile)
    port = free_port()
    try:
        resources.run("registry", tag, options=("-p", f"127.0.0.1:{port}:5000"))
        wait_for("the registry", lambda: docker_http_ok(f"http://127.0.0.1:{port}/v2/"), timeout=60)
        yield f"127.0.0.1:{port}"
    finally:
        docker("rm", "-f", "-v", resources.name("registry"), check=False)
        docker("image", "rm", "-f", tag, check=False)


def docker_build(tag, dockerfile):
    subprocess.run(["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, text=True, check=True,
                   stdout=subprocess.DEVNULL, env=dict(os.environ, DOCKER_BUILDKIT="0"), timeout=900)


def docker_http_ok(url):
    return support.http_get(url)[0] == 200


def test_pull_from_a_registry(role, registry, agent_image):
    remote = f"{registry}/autoproxy/agent:aptest-{RUN_ID}"
    docker("tag", agent_image, remote)
    docker("push", remote)
    image_id = docker("image", "inspect", "-f", "{{.Id}}", remote)
    docker("image", "rm", remote)
    args = ["-e", "agent_image_source=registry", *image_args(remote)]
    try:
        output = role(*args, "-e", "agent_image_pull=never", expect_failure=True)
        assert remote in output, "pull never names the missing image"
        counters = playbook_runs.recap(role(*args, "--check"), "target")
        assert counters["failed"] == 0 and counters["changed"] == 1, counters
        assert playbook_runs.recap(role(*args), "target")["changed"] == 1
        assert docker("image", "inspect", "-f", "{{.Id}}", remote) == image_id
        counters = playbook_runs.recap(role(*args), "target")
        assert counters["changed"] == 0, counters
        counters = playbook_runs.recap(role(*args, "-e", "agent_image_pull=always"), "target")
        assert counters["failed"] == 0 and counters["changed"] == 0, "an unchanged image pulled again is no change"
    finally:
        docker("image", "rm", "-f", remote, check=False)
