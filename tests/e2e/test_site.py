# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""End to end: the built collection tarball, installed, deploys the stack with site.yml on the
real Docker engine; every assertion goes through the real HAProxy by Host header or reads the
real Consul. The stack uses its own prefix and host ports so it never touches a demo that runs
beside it, and is torn down afterwards, also on failure."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request

import browser
import pytest
import support
from playbook_runs import install_collection
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait
from support import wait_for

pytestmark = pytest.mark.e2e

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
PREFIX = "apte2e"
PROXY_PORT = 18080
CONSUL_PORT = 18500
DOMAINS = ("127.0.0.1.nip.io", "test")
HELLO_HOST = f"www.hello.{DOMAINS[0]}"
STACK_VARS = [
    "-e", f"autoproxy_prefix={PREFIX}",
    "-e", "proxy_http_host_ip=127.0.0.1",
    "-e", f"proxy_http_host_port={PROXY_PORT}",
    "-e", f"consul_http_host_port={CONSUL_PORT}",
]


class Ansible:
    """Runs playbooks of the collection as installed from its built tarball."""

    def __init__(self, config, image_vars):
        # Only the tarball's install and what the `ansible` package bundles: not the checkout.
        self.env = dict(os.environ, ANSIBLE_CONFIG=config, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        self.image_vars = ["-e", "@" + image_vars] if image_vars else []

    def playbook(self, name, *extra, check=True):
        cmd = [os.path.join(BIN, "ansible-playbook"), "autoproxy.stack." + name, *self.image_vars, *STACK_VARS, *extra]
        proc = subprocess.run(cmd, env=self.env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=900, check=False)
        sys.stdout.write(proc.stdout)
        if check and proc.returncode != 0:
            pytest.fail(f"ansible-playbook {name} failed with {proc.returncode} (output above)")
        return proc.stdout


def recap(output):
    """The PLAY RECAP counters of localhost."""
    match = re.search(r"^localhost\s*:\s*(.*)$", output, re.MULTILINE)
    if not match:
        pytest.fail("no PLAY RECAP in the output")
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def http_get(host, path="/"):
    return support.http_get(f"http://127.0.0.1:{PROXY_PORT}{path}", host)


def consul_get(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{CONSUL_PORT}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def hello_hostname(host=HELLO_HOST):
    status, body = http_get(host)
    match = re.search(r"My hostname is\s*([\w.-]+)", body)
    return match.group(1) if status == 200 and match else None


def demo_instances(passing_only):
    entries = consul_get("/v1/health/service/www" + ("?passing=1" if passing_only else ""))
    return sorted(e["Service"]["Meta"].get("autoproxy_container", "") for e in entries
                  if e["Service"]["Meta"].get("autoproxy_container", "").startswith(PREFIX + "_web_"))


@pytest.fixture(scope="module")
def ansible(tmp_path_factory):
    build = tmp_path_factory.mktemp("collection")
    collections = install_collection(build)
    config = build / "ansible.cfg"
    config.write_text(f"[defaults]\ncollections_path = {collections}\nretry_files_enabled = false\n")
    runner = Ansible(str(config), os.environ.get("AUTOPROXY_IMAGE_VARS"))
    runner.playbook("teardown")
    yield runner
    runner.playbook("teardown", check=False)


@pytest.fixture(scope="module")
def site_output(ansible):
    return ansible.playbook("site")


def test_site_prints_the_routing_table(site_output):
    assert re.search(r"www\.hello\.test -> hello_www_backend -> \d+\.\d+\.\d+\.\d+:80", site_output)
    assert "consul-admin.infra.127.0.0.1.nip.io -> consul-admin_infra_backend" in site_output
    assert "proxy-admin.infra.test -> proxy-admin_infra_backend" in site_output


@pytest.mark.parametrize("host", ["www.hello.127.0.0.1.nip.io", "www.hello.test", "www.hello", "WWW.Hello.test:80"])
def test_hello_page_by_host_header(site_output, host):
    name = wait_for(f"the hello page at {host}", lambda: hello_hostname(host))
    containers = subprocess.run(["docker", "ps", "--filter", f"label=autoproxy.stack.app={PREFIX}_web",
                                 "--format", "{{.ID}}"], stdout=subprocess.PIPE, text=True, check=True).stdout
    assert name in containers.split(), "the page must come from a demo container"


def ok_body(host, path="/"):
    """The body of a 200 answer, else None (to poll with wait_for)."""
    status, body = http_get(host, path)
    return body if status == 200 else None


def test_consul_ui_through_the_proxy(site_output):
    body = wait_for("the Consul UI", lambda: ok_body(f"consul-admin.infra.{DOMAINS[0]}", "/ui/"))
    assert "consul" in body.lower()
    status, leader = http_get("consul-admin.infra.test", "/v1/status/leader")
    assert status == 200 and ":8300" in leader


def test_stats_page_through_the_proxy(site_output):
    body = wait_for("the stats page", lambda: ok_body(f"proxy-admin.infra.{DOMAINS[1]}"))
    assert "Statistics Report" in body
    # The demo app starts after the proxy, so it is routed at once on a spare backend, which
    # gets its own name on the stats page proxy_rename_after (2 s) after the last change.
    wait_for("hello_www_backend by its own name", lambda: "hello_www_backend" in (
        ok_body(f"proxy-admin.infra.{DOMAINS[1]}") or ""), timeout=15)


@pytest.fixture(scope="module")
def chromium():
    with browser.chromium() as driver:
        yield driver


def test_consul_ui_in_a_browser(site_output, chromium):
    """The Consul UI, a single-page app, renders through the proxy: its loading screen goes away
    and the service list shows the demo app's service. Screenshot: tests/output/screenshots/."""
    chromium.get(f"http://consul-admin.infra.{DOMAINS[1]}:{PROXY_PORT}/ui/")
    try:
        WebDriverWait(chromium, 60).until(lambda d: "loading" not in d.find_element(By.TAG_NAME, "html")
                                          .get_attribute("class").split())
        # The list renders only the rows in view, and this engine's other test containers are
        # registered too: search for the service, as a person would.
        search = WebDriverWait(chromium, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type='search']"))
        search[0].send_keys("www")
        WebDriverWait(chromium, 30).until(lambda d: d.find_elements(
            By.CSS_SELECTOR, "a[href$='/services/www/instances']"))
    finally:
        browser.screenshot(chromium, "consul-ui")
    assert urllib.parse.urlsplit(chromium.current_url).path == "/ui/dc1/services"
    assert chromium.find_element(By.CSS_SELECTOR, "a[href$='/services/www/instances']").text.strip() == "www"


def test_stats_page_in_a_browser(site_output, chromium):
    """HAProxy's stats page, as rendered, lists the demo app's backend by its own name."""
    url = f"http://proxy-admin.infra.{DOMAINS[0]}:{PROXY_PORT}/"

    def backend_listed(driver):
        driver.get(url)
        return "hello_www_backend" in driver.find_element(By.TAG_NAME, "body").text

    try:
        WebDriverWait(chromium, 30, poll_frequency=1).until(backend_listed)
    finally:
        browser.screenshot(chromium, "haproxy-stats")
    assert "Statistics Report" in chromium.find_element(By.TAG_NAME, "body").text


def proxy_request(host, method, path, body=b"", headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{PROXY_PORT}{path}", data=body, method=method,
                                 headers={"Host": host, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_consul_ui_through_the_proxy_is_read_only(site_output):
    wait_for("the Consul UI", lambda: ok_body(f"consul-admin.infra.{DOMAINS[0]}", "/ui/"))
    hijack = json.dumps({"ID": "evil", "Name": "www", "Tags": ["hello"], "Address": "10.6.6.6", "Port": 80}).encode()
    for host in (f"consul-admin.infra.{DOMAINS[0]}", "CONSUL-ADMIN.INFRA.TEST.:80"):
        assert proxy_request(host, "PUT", "/v1/agent/service/register", hijack) == 403
        assert proxy_request(host, "PUT", "/v1/kv/autoproxy-e2e", b"x") == 403
    # The writes' own traces, not the whole catalog: other tests' containers come and go meanwhile.
    # The agent's own record first: its copy in the catalog follows it asynchronously.
    for path in ("/v1/agent/service/evil", "/v1/kv/autoproxy-e2e"):
        with pytest.raises(urllib.error.HTTPError) as missing:
            consul_get(path)
        assert missing.value.code == 404, path
    assert "evil" not in {entry["ServiceID"] for entry in consul_get("/v1/catalog/service/www")}


def test_access_log_line_on_the_proxy_stdout(site_output):
    marker = f"/e2e-{os.getpid()}"
    http_get("www.hello.test.", marker)
    proxy = f"{PREFIX}_proxy"

    def logged():
        proc = subprocess.run(["docker", "logs", proxy], capture_output=True, text=True, check=False)
        return [line for line in proc.stdout.splitlines() if marker in line]

    lines = wait_for("the access log line on the proxy's stdout", logged, timeout=10)
    assert len(lines) == 1 and " hello_www_backend/" in lines[0]
    assert f'"www.hello.test" "GET {marker} HTTP/1.1"' in lines[0]


def test_unknown_host_gets_503(site_output):
    status, _unused = http_get("nothing.here.test")
    assert status == 503


def test_second_site_run_changes_nothing(ansible, site_output):
    counters = recap(ansible.playbook("site"))
    assert counters["changed"] == 0, counters
    assert counters["failed"] == 0


def test_scale_up_to_three_replicas(ansible, site_output):
    ansible.playbook("scale", "-e", "web_replicas=3")
    wanted = [f"{PREFIX}_web_{i}" for i in (1, 2, 3)]
    assert demo_instances(passing_only=True) == wanted
    seen = set()
    wait_for("3 distinct hostnames through the proxy",
             lambda: seen.add(hello_hostname()) or len(seen - {None}) == 3, timeout=30)


def test_scale_down_to_one_replica(ansible, site_output):
    ansible.playbook("scale", "-e", "web_replicas=1")
    assert demo_instances(passing_only=False) == [f"{PREFIX}_web_1"]
    running = subprocess.run(["docker", "ps", "-a", "--filter", f"label=autoproxy.stack.app={PREFIX}_web",
                              "--format", "{{.Names}}"], stdout=subprocess.PIPE, text=True, check=True).stdout
    assert running.split() == [f"{PREFIX}_web_1"]
    only = wait_for("one hostname left", hello_hostname)
    assert all(hello_hostname() == only for _unused in range(20))


def test_secrets_stay_out_of_verbose_output_and_full_consul_access_needs_auth(ansible, site_output):
    password, token = f"pw{os.urandom(8).hex()}", f"tk{os.urandom(8).hex()}"
    output = ansible.playbook("site", "-v", "-e", "proxy_stats_user=admin", "-e", f"proxy_stats_password={password}",
                              "-e", "proxy_consul_ui_access=full", "-e", "proxy_consul_ui_user=admin",
                              "-e", f"proxy_consul_ui_password={password}", "-e", f"registrator_consul_token={token}")
    assert password not in output and token not in output
    assert "AUTOPROXY_STATS_PASSWORD" not in output and "CONSUL_HTTP_TOKEN" not in output
    host = f"consul-admin.infra.{DOMAINS[0]}"
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}
    wait_for("the Consul UI behind basic auth", lambda: proxy_request(host, "GET", "/ui/") == 401, timeout=30)
    wait_for("the Consul UI with the password", lambda: proxy_request(host, "GET", "/ui/", headers=auth) == 200,
             timeout=30)
    assert proxy_request(host, "PUT", "/v1/kv/autoproxy-e2e", b"x") == 401
    assert proxy_request(host, "PUT", "/v1/kv/autoproxy-e2e", b"x", auth) == 200
    assert proxy_request(f"proxy-admin.infra.{DOMAINS[1]}", "GET", "/") == 401


def test_a_setting_the_agent_refuses_fails_the_run_and_keeps_the_running_proxy(ansible, site_output):
    def proxy_id():
        return subprocess.run(["docker", "inspect", "--format", "{{.Id}}", f"{PREFIX}_proxy"], stdout=subprocess.PIPE,
                              text=True, check=True).stdout.strip()

    before = proxy_id()
    output = ansible.playbook("site", "-e", "proxy_check_interval=2x", check=False)
    assert recap(output)["failed"] == 1
    assert "invalid --check-interval '2x'" in output
    assert proxy_id() == before
    assert http_get(HELLO_HOST)[0] == 200


def test_teardown_removes_everything_the_stack_made(ansible, site_output):
    ansible.playbook("teardown")
    for kind in ("ps -a", "network ls", "volume ls"):
        left = subprocess.run(["docker", *kind.split(), "-q", "--filter", f"label=autoproxy.stack.project={PREFIX}"],
                              stdout=subprocess.PIPE, text=True, check=True).stdout.split()
        assert left == [], f"docker {kind} still lists {left}"
