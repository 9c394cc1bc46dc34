# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Shared fixtures for tests against the real Docker engine, Consul and HAProxy.

Every resource a test makes carries the label ``autoproxy.stack.test=<run id>`` and is removed
at the end of the session, also on failure. Images come from AUTOPROXY_IMAGE_VARS (written by
images/select-images): the offline kit's on a host without a registry.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from support import ROOT, Consul, Resources, read_image_vars


@pytest.fixture(scope="session")
def images():
    return read_image_vars()


@pytest.fixture(scope="session")
def agent_image(images):
    """The agent image built from the working tree (tag autoproxy/agent:test)."""
    tag = "autoproxy/agent:test"
    subprocess.run(["docker", "build", "-q", "-f", "roles/agent_image/files/Dockerfile", "--build-arg",
                    "BASE_IMAGE=" + images["agent_image_base"], "-t", tag, "."], cwd=ROOT, check=True,
                   env=dict(os.environ, DOCKER_BUILDKIT="0"), stdout=subprocess.DEVNULL, timeout=900)
    return tag


@pytest.fixture(scope="session")
def resources():
    res = Resources()
    yield res
    res.cleanup()


@pytest.fixture(scope="session")
def consul_factory(resources, images):
    """consul_factory(network, stem="consul") -> Consul."""
    return lambda network, stem="consul": Consul(resources, images, network, stem)
