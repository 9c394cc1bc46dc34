# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registrator agent against a Consul that only answers HTTPS and enforces ACLs.

A real Consul 1.8 dev agent with a certificate from a CA made here, ``default_policy = deny``
and a master token: the agent's --consul-cacert, --consul-token and registrator's
``consul-tls://`` argument are exercised for real, and a wrong token is refused and logged
without registering anything.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.request

import pytest
from support import DOCKER_SOCKET_MOUNT, docker, free_port, owned_services, wait_for

pytestmark = pytest.mark.e2e

TOKEN = "e2e-master-token"
CONSUL_HCL = (
    'ports { https = 8501 } '
    'cert_file = "/tls/server.pem" key_file = "/tls/server-key.pem" ca_file = "/tls/ca.pem" '
    f'acl {{ enabled = true default_policy = "deny" tokens {{ master = "{TOKEN}" agent = "{TOKEN}" }} }}'
)


def make_tls(directory):
    """A CA and a server certificate for the names the agent and this test use."""

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    # Python 3.13 verifies strictly (VERIFY_X509_STRICT): key usages and key identifiers are required.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=autoproxy e2e CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", "ca-key.pem", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=consul", "-keyout", "server-key.pem",
            "-out", "server.csr")
    with open(os.path.join(directory, "san.ext"), "w", encoding="ascii") as handle:
        handle.write("subjectAltName=DNS:secure-consul,DNS:localhost,IP:127.0.0.1\n"
                     "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                     "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.pem")
    for name in os.listdir(directory):
        os.chmod(os.path.join(directory, name), 0o644)
    os.chmod(directory, 0o755)


class SecureConsul:
    def __init__(self, resources, images, network, tls_dir):
        self.port = free_port()
        self.container = resources.run(
            "secure-consul", images["consul_image"], "agent", "-dev", "-client=0.0.0.0", "-hcl", CONSUL_HCL,
            network=network, labels={"SERVICE_IGNORE": "true"},
            options=("-p", f"127.0.0.1:{self.port}:8501", "--network-alias", "secure-consul",
                     "-v", f"{tls_dir}:/tls:ro"))
        self.context = ssl.create_default_context(cafile=os.path.join(tls_dir, "ca.pem"))
        wait_for("Consul over HTTPS", lambda: self.get("/v1/status/leader"), timeout=60)

    def get(self, path, token=TOKEN):
        request = urllib.request.Request(f"https://localhost:{self.port}{path}", headers={"X-Consul-Token": token})
        with urllib.request.urlopen(request, timeout=10, context=self.context) as resp:
            return json.loads(resp.read() or b"null")

    def agent_services(self):
        return self.get("/v1/agent/services")


@pytest.fixture(scope="module")
def secure(resources, images, tmp_path_factory):
    tls_dir = str(tmp_path_factory.mktemp("consul-tls"))
    make_tls(tls_dir)
    network = resources.network("regtls")
    return {"consul": SecureConsul(resources, images, network, tls_dir), "network": network, "tls": tls_dir}


def agent(resources, image, secure, stem, consul_argument, *args):
    return resources.run(stem, image, "registrator", consul_argument, "--internal", f"--hostname={stem}",
                         f"--filter-label=aptest.reg={stem}", "--consul-cacert=/tls/ca.pem", *args,
                         network=secure["network"], labels={"SERVICE_IGNORE": "true"},
                         options=(*DOCKER_SOCKET_MOUNT, "-v", f"{secure['tls']}:/tls:ro"))


def app(resources, images, secure, stem, owner):
    return resources.run(stem, images["demo_app_image"], network=secure["network"], env={"SERVICE_NAME": "secureapp"},
                         labels={"aptest.reg": owner})


@pytest.mark.parametrize("consul_argument", ["--consul=https://secure-consul:8501", "consul-tls://secure-consul:8501"])
def test_registers_over_https_with_a_token(resources, images, agent_image, secure, consul_argument):
    stem = "regtls-url" if consul_argument.startswith("--") else "regtls-uri"
    agent(resources, agent_image, secure, stem, consul_argument, f"--consul-token={TOKEN}")
    name = app(resources, images, secure, f"{stem}-app", stem)
    wait_for("the app registered through TLS and ACLs",
             lambda: set(owned_services(secure["consul"], stem)) == {f"{stem}:{name}:80"}, timeout=30)
    docker("rm", "-f", name)
    wait_for("and deregistered", lambda: not owned_services(secure["consul"], stem), timeout=30)


def test_a_wrong_token_is_refused_and_logged(resources, images, agent_image, secure):
    stem = "regtls-badtoken"
    container = agent(resources, agent_image, secure, stem, "--consul=https://secure-consul:8501",
                      "--consul-token=not-the-token")
    app(resources, images, secure, f"{stem}-app", stem)

    def logged_refusal():
        logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=False)
        text = logs.stdout + logs.stderr
        return "Permission denied" in text or "403" in text or "ACL not found" in text

    wait_for("the refusal in the agent's log", logged_refusal, timeout=30)
    assert not owned_services(secure["consul"], stem)
    assert docker("inspect", "-f", "{{.State.Running}}", container) == "true", "the agent keeps running"
