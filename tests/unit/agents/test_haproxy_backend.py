# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The proxy agent's HAProxy side that needs no HAProxy: the file writer, the health watch's filter."""

from __future__ import annotations

import pathlib
import time

from ansible_collections.autoproxy.stack.agents._haproxy_backend import ConfigWriter
from ansible_collections.autoproxy.stack.agents.proxy import ProxyAgent, parse_args
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table

SETTINGS = HaproxySettings(spare_backends=1)


def table(*ports: int) -> dict:
    return build_routing_table([{"service": "www", "id": f"w{port}", "node": "n1", "address": "10.0.0.1", "port": port,
                                 "tags": ["hello"], "passing": True} for port in ports], ["test"])


def wait_for(path: pathlib.Path, text: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text() == text:
            return True
        time.sleep(0.01)
    return False


def test_writer_writes_the_newest_table_of_a_burst_once(tmp_path: pathlib.Path) -> None:
    writer = ConfigWriter(str(tmp_path), delay=0.2)
    try:
        for port in (1, 2, 3):
            writer.later(table(port), SETTINGS)
        newest = render_haproxy_config(table(3), SETTINGS)["haproxy.cfg"]
        assert wait_for(tmp_path / "haproxy.cfg", newest)
    finally:
        writer.stop()


def test_changes_closer_than_the_delay_cost_one_write(tmp_path: pathlib.Path) -> None:
    writer = ConfigWriter(str(tmp_path), delay=0.5)
    try:
        writer.later(table(1), SETTINGS)
        time.sleep(0.2)
        writer.later(table(2), SETTINGS)
        time.sleep(0.2)
        assert not (tmp_path / "haproxy.cfg").exists(), "nothing written while changes keep coming"
        assert wait_for(tmp_path / "haproxy.cfg", render_haproxy_config(table(2), SETTINGS)["haproxy.cfg"])
    finally:
        writer.stop()


def test_a_reload_write_is_never_overwritten_by_an_older_table(tmp_path: pathlib.Path) -> None:
    writer = ConfigWriter(str(tmp_path), delay=0.2)
    try:
        writer.later(table(1), SETTINGS)
        reloaded = render_haproxy_config(table(2), SETTINGS)
        writer.now(reloaded)
        time.sleep(0.5)
        assert (tmp_path / "haproxy.cfg").read_text() == reloaded["haproxy.cfg"]
    finally:
        writer.stop()


def test_stop_writes_what_is_pending(tmp_path: pathlib.Path) -> None:
    writer = ConfigWriter(str(tmp_path), delay=30)
    writer.later(table(4), SETTINGS)
    writer.stop()
    assert (tmp_path / "haproxy.cfg").read_text() == render_haproxy_config(table(4), SETTINGS)["haproxy.cfg"]


def test_health_answers_that_only_change_check_output_wake_nothing(tmp_path: pathlib.Path) -> None:
    agent = ProxyAgent(parse_args([f"--config-dir={tmp_path}"]))
    try:
        check = {"Node": "n1", "CheckID": "c1", "ServiceID": "w1", "Status": "passing", "Output": "ok at 1"}
        assert agent.keep_health(([check], 10)) is True
        assert agent.keep_health(([dict(check, Output="ok at 2")], 11)) is False
        assert agent.health_snapshot == ([dict(check, Output="ok at 2")], 11), "the newest answer is still kept"
        assert agent.keep_health(([dict(check, Status="critical")], 12)) is True
        assert agent.keep_health(None) is True and agent.keep_health(([check], 13)) is True
    finally:
        agent.backend.stop()


def test_the_agent_keeps_which_checks_exist_with_the_answer_and_the_catalog_index(tmp_path: pathlib.Path) -> None:
    agent = ProxyAgent(parse_args([f"--config-dir={tmp_path}"]))
    try:
        check = {"Node": "n1", "CheckID": "c1", "ServiceID": "w1", "Status": "passing"}
        agent.keep_health(([check], 10))
        assert agent.health_read == (([check], 10), frozenset({("n1", "w1", "c1")}))
        agent.keep_health(([dict(check, Status="critical")], 11))
        assert agent.health_read[1] == frozenset({("n1", "w1", "c1")}), "a status is not which checks exist"
        agent.keep_health(None)
        assert agent.health_read == (None, None) and agent.health_snapshot is None
        assert agent.keep_catalog((None, 7)) is True and agent.catalog_index == 7
        agent.keep_catalog(None)
        assert agent.catalog_index is None, "after a failed watch, nothing read before is taken again"
    finally:
        agent.backend.stop()
