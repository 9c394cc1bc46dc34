# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The consul role over the lab, from the installed collection over SSH: servers on
consul_servers with bootstrap_expect, a client agent on every other host, gossip encrypted with
a key made once on the controller; a second run changes nothing; a replaced server rejoins."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.fleet

PLAYBOOK = str(Path(__file__).parent / "playbooks" / "consul.yml")
CONTAINER = "autoproxy_consul"
CONFIG_DIR = "/etc/autoproxy/consul"


def groups(lab_facts) -> dict[str, list[str]]:
    inventory = yaml.safe_load(Path(lab_facts["inventory"]).read_text())["all"]["children"]
    return {name: sorted(group["hosts"]) for name, group in inventory.items()}


def key_file(lab_facts) -> Path:
    return Path(lab_facts["inventory"]).parent / "consul_gossip_key"


def remove_consul(fleet, host: str) -> None:
    fleet.ssh(host, f"docker rm -f {CONTAINER} >/dev/null 2>&1; docker volume rm -f {CONTAINER}_data >/dev/null; "
                    f"rm -rf {CONFIG_DIR}")


def members(fleet, host: str) -> dict[str, tuple[str, str, str]]:
    """`consul members` seen from host: {node: (address, status, type)}."""
    lines = fleet.docker_exec(host, CONTAINER, "consul members").splitlines()[1:]
    return {cols[0]: (cols[1].rsplit(":", 1)[0], cols[2], cols[3]) for cols in (line.split() for line in lines)}


def raft_peers(fleet, host: str) -> dict[str, tuple[str, str]]:
    """`consul operator raft list-peers` from host: {node: (state, voter)}."""
    lines = fleet.docker_exec(host, CONTAINER, "consul operator raft list-peers").splitlines()[1:]
    return {cols[0]: (cols[3], cols[4]) for cols in (line.split() for line in lines)}


def expected_members(lab_facts) -> dict[str, tuple[str, str, str]]:
    servers = groups(lab_facts)["consul_servers"]
    return {host: (address, "alive", "server" if host in servers else "client")
            for host, address in lab_facts["hosts"].items()}


def wait_until(what: str, probe, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last is True:
            return
        time.sleep(1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {last}")


def assert_cluster_formed(fleet, lab_facts) -> None:
    want = expected_members(lab_facts)
    servers = groups(lab_facts)["consul_servers"]
    for host in lab_facts["hosts"]:
        wait_until(f"the members seen from {host} to be {want}",
                   lambda host=host: members(fleet, host) == want or members(fleet, host))

    def one_leader_all_voters():
        peers = raft_peers(fleet, servers[0])
        states = sorted(state for state, voter in peers.values())
        voters = [voter for state, voter in peers.values()]
        if sorted(peers) == servers and states == ["follower"] * (len(servers) - 1) + ["leader"] \
                and voters == ["true"] * len(servers):
            return True
        return peers

    wait_until("one leader and every server a voter", one_leader_all_voters)


def changed_hosts(result: dict) -> dict[str, int]:
    return {host: stats["changed"] for host, stats in result["stats"].items() if stats["changed"]}


def failures(result: dict) -> dict[str, int]:
    return {host: stats["failures"] + stats["unreachable"] for host, stats in result["stats"].items()
            if stats["failures"] or stats["unreachable"]}


@pytest.fixture(scope="module")
def first_run(fleet, lab_facts):
    for host in lab_facts["hosts"]:
        remove_consul(fleet, host)
    key_file(lab_facts).unlink(missing_ok=True)
    result = fleet.playbook_json(PLAYBOOK)
    yield result
    for host in lab_facts["hosts"]:
        remove_consul(fleet, host)


def test_first_run_forms_a_cluster_of_servers_and_a_client(first_run, fleet, lab_facts):
    assert not failures(first_run), json.dumps(first_run["stats"])
    assert_cluster_formed(fleet, lab_facts)


def test_gossip_is_encrypted_with_the_key_kept_on_the_controller(first_run, fleet, lab_facts):
    kept = key_file(lab_facts).read_text().split()[0]
    key = base64.b64encode(kept.encode()).decode()
    assert len(base64.b64decode(key)) == 32
    for host in lab_facts["hosts"]:
        assert json.loads(fleet.ssh(host, f"cat {CONFIG_DIR}/gossip.json")) == {"encrypt": key}
        assert fleet.ssh(host, f"stat -c %a {CONFIG_DIR}/gossip.json").strip() == "600"
        info = fleet.docker_exec(host, CONTAINER, "consul info")
        serf_lan = info.split("serf_lan:")[1]
        assert "encrypted = true" in serf_lan


def test_the_key_is_never_printed(first_run, lab_facts):
    kept = key_file(lab_facts).read_text().split()[0]
    output = json.dumps(first_run)
    assert kept not in output
    assert base64.b64encode(kept.encode()).decode() not in output


def test_a_second_run_changes_nothing(first_run, fleet, lab_facts):
    result = fleet.playbook_json(PLAYBOOK)
    assert not failures(result), json.dumps(result["stats"])
    assert changed_hosts(result) == {}


def test_a_replaced_server_rejoins(first_run, fleet, lab_facts):
    servers = groups(lab_facts)["consul_servers"]
    replaced = servers[-1]
    old_id = fleet.docker_exec(replaced, CONTAINER, "cat /consul/data/node-id").strip()
    remove_consul(fleet, replaced)
    result = fleet.playbook_json(PLAYBOOK)
    assert not failures(result), json.dumps(result["stats"])
    assert sorted(changed_hosts(result)) == [replaced]
    assert fleet.docker_exec(replaced, CONTAINER, "cat /consul/data/node-id").strip() != old_id
    assert_cluster_formed(fleet, lab_facts)


@pytest.mark.parametrize(("case", "extra", "message"), [
    ("even number of servers", ["-e", "consul_servers_group=edges"], "Their number must be odd"),
    ("servers not in the play", ["--limit", "LAST_HOST"], "not in the play: HOSTS_BUT_LAST."),
    ("a gossip key that is no key", ["-e", "consul_gossip_key=not-a-key"], "consul_gossip_key must be the base64"),
])
def test_bad_inventory_or_key_fails_with_what_to_fix(first_run, fleet, lab_facts, case, extra, message):
    hosts = sorted(lab_facts["hosts"])
    servers = groups(lab_facts)["consul_servers"]
    extra = [hosts[-1] if arg == "LAST_HOST" else arg for arg in extra]
    message = message.replace("HOSTS_BUT_LAST", ", ".join(servers))
    output = fleet.playbook(PLAYBOOK, *extra, check=False)
    assert message in output, case
    recap = {host: (int(changed), int(failed)) for host, changed, failed in
             re.findall(r"^(\S+)\s*: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", output, re.MULTILINE)}
    assert recap, f"{case}: no PLAY RECAP"
    assert all(changed == 0 and failed == 1 for changed, failed in recap.values()), f"{case}: {recap}"
