# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The option registry: its README table, and options added through it alone."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from ansible_collections.autoproxy.stack.plugins.filter.service_tags import DOCUMENTATION as SERVICE_TAGS_DOC
from ansible_collections.autoproxy.stack.plugins.filter.service_tags import service_tags
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import validate_files
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
    server_arguments,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_runtime import (
    Plan,
    RunningState,
    SetOption,
    plan_changes,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._options import (
    ROUTING_OPTIONS,
    Choice,
    Flag,
    HaproxyForm,
    IntRange,
    RoutingOption,
    option_table,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table
from ansible_collections.autoproxy.stack.plugins.module_utils._tags import parse_tags

README = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "README.md")
SETTINGS = HaproxySettings(spare_backends=2)

# Two options the collection does not have, declared the way a contributor would add one.
SLOWSTART = RoutingOption(
    name="slowstart",
    scope="server",
    value=IntRange(1, 3600),
    meaning="seconds over which a server that comes back ramps up to its full weight",
    example="slowstart=30",
    haproxy=HaproxyForm(server_words=lambda seconds, _server: ["slowstart", f"{seconds}s"]),
)
RETRY_ON = RoutingOption(
    name="retry_on",
    scope="backend",
    value=Choice(("none", "conn-failure", "all-retryable-errors"), placeholder="EVENTS"),
    meaning="what the backend retries a request on",
    example="retry_on=all-retryable-errors",
    haproxy=HaproxyForm(backend_lines=lambda events: [f"retry-on {events}"]),
)
CHECK_PORT = RoutingOption(
    name="check_port",
    scope="server",
    value=IntRange(1, 65535),
    meaning="the port HAProxy's own check connects to",
    example="check_port=8081",
    haproxy=HaproxyForm(
        server_words=lambda port, _server: ["port", str(port)],
        runtime_words=lambda target, port: ["set", "server", target, "check-port", str(port)],
    ),
)


@pytest.fixture
def added_options(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for option in (SLOWSTART, RETRY_ON, CHECK_PORT):
        monkeypatch.setitem(ROUTING_OPTIONS, option.name, option)
    yield


def instance(iid: str, port: int, tags: list[str]) -> dict[str, object]:
    return {"service": "www", "id": iid, "node": "n1", "address": "127.0.0.1", "port": port, "tags": tags,
            "passing": True}


def test_readme_option_table_is_the_generated_one() -> None:
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    match = re.search(r"<!-- routing-options:start -->\n(.*?)<!-- routing-options:end -->", text, re.DOTALL)
    assert match is not None, "README.md lost its routing-options markers"
    assert match.group(1) == option_table(), "regenerate the README table with _options.option_table()"


def test_service_tags_filter_documents_every_option() -> None:
    for name in ROUTING_OPTIONS:
        assert f"C({name}" in SERVICE_TAGS_DOC, f"service_tags DOCUMENTATION does not name option {name}"


def test_options_of_both_scopes_reach_table_config_and_plan(added_options: None, haproxy_bin: str) -> None:
    tags = ["hello", "slowstart=30", "retry_on=conn-failure", "check_port=5"]
    parsed = parse_tags(tags + ["slowstart=0", "retry_on=sometimes"], service="www")
    assert parsed.options == {"slowstart": 30, "retry_on": "conn-failure", "check_port": 5}
    assert parsed.warnings == (
        "service 'www': tag 'slowstart=0' dropped: slowstart must be an integer 1-3600",
        "service 'www': tag 'retry_on=sometimes' dropped: retry_on must be one of none, conn-failure, "
        "all-retryable-errors",
    )
    assert service_tags(tags)["options"] == parsed.options

    table = build_routing_table([instance("a", 1, tags)], ["test"])
    backend = table["backends"]["hello_www_backend"]
    assert backend["options"] == {"retry_on": "conn-failure"}
    assert backend["servers"][0]["slowstart"] == 30 and backend["servers"][0]["check_port"] == 5

    files = render_haproxy_config(table, SETTINGS)
    cfg = files["haproxy.cfg"]
    name = backend["servers"][0]["name"]
    assert "    retry-on conn-failure\n" in cfg
    assert f"    server {name} 127.0.0.1:1 check slowstart 30s port 5\n" in cfg
    ok, output = validate_files(files, (haproxy_bin,))
    assert ok, output

    state = RunningState.from_table(table, SETTINGS)

    def plan(*tag_lists: list[str]) -> Plan:
        instances = [instance(chr(ord("a") + index), index + 1, tags) for index, tags in enumerate(tag_lists)]
        return plan_changes(state, build_routing_table(instances, ["test"]))

    slower = plan(["hello", "slowstart=60", "retry_on=conn-failure", "check_port=5"])
    assert slower.reload_reason == (
        f"backend hello_www_backend: server {name} changes slowstart, which only a reload sets"
    )
    no_retry = plan(["hello", "slowstart=30", "check_port=5"])
    assert no_retry.reload_reason == "backend hello_www_backend changes balance or sticky_session or retry_on"
    moved = plan(["hello", "slowstart=30", "retry_on=conn-failure", "check_port=6"])
    assert moved.reload_reason is None and moved.steps == [SetOption("hello_www_backend", name, "check_port", 6)]
    grown = plan(tags, tags)
    assert grown.reload_reason is None and [step.kind for step in grown.steps] == ["add_server"]
    assert server_arguments(grown.steps[0].server, grown.steps[0].options).endswith(" slowstart 30s port 5")


def test_a_new_flag_is_a_bare_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ROUTING_OPTIONS, "backup", RoutingOption(
        name="backup", scope="server", value=Flag(), meaning="only used when no other server is up",
        example="backup", haproxy=HaproxyForm(server_words=lambda on, _server: ["backup"] if on else [])))
    parsed = parse_tags(["backup", "hello", "backup=maybe"], service="www")
    assert parsed.options == {"backup": True} and parsed.routing == ("hello",)
    assert parsed.warnings == ("service 'www': tag 'backup=maybe' dropped: backup takes no value or true/false",)
    assert "`backup` | no value (or `true`/`false`) | server | no |" in option_table()
