# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Property tests (docs/RULES.md §7): whatever names and tags containers carry, every rendered config passes
the real ``haproxy -c``, nothing adds a line, hostile input is dropped with a warning, and a good
service next to bad ones is always routed.

120 configs of 15-20 generated instances each, every instance a generated service name, id,
address and 2-6 tags: over 10,000 generated names and tags, in configs each validated by HAProxy.
AUTOPROXY_PROPERTY_EXAMPLES changes the number of configs.
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import validate_files
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table, valid_address
from ansible_collections.autoproxy.stack.plugins.module_utils._tags import valid_service_name
from ansible_collections.autoproxy.stack.plugins.module_utils._text import show

NASTY = ["\n", "\r", "#", ";", "'", '"', " ", "\t", "\\", "\u00e9", "\u2028", "\x00", "{", "}", "%[", "$(x)",
         "=", ",", ":", "/", "\n    server evil 6.6.6.6:80", "\nbackend evil\n", "_", ".", "-"]
WORDS = ["www", "hello", "world.dev", "api", "sticky_session", "weight=", "balance=", "maxconn=", "server_alias=",
         "server_aliases=", "public_ipaddress=", "leastconn", "5", "999999999", "a" * 70, "b" * 300]
text = st.lists(st.one_of(st.sampled_from(NASTY), st.sampled_from(WORDS), st.text(max_size=12)),
                min_size=1, max_size=6).map("".join)
SAFE_LINE_RE = re.compile(r"(?:[A-Za-z0-9_.:/ -]*|    [A-Za-z0-9_.:/ ,!\-\[\]%()\"]*)\Z")
SAFE_MAP_LINE_RE = re.compile(r"[a-z0-9.-]+ [A-Za-z0-9_.-]+\Z")
HOSTILE_CHARS_RE = re.compile(r"[\s#'\"\\]|[^\x00-\x7f]")
# Lines the renderer writes whatever the input: fixed text, no value from a table or settings in them.
FIXED_LINES = frozenset(render_haproxy_config(
    build_routing_table([{"service": "consul-admin_infra", "id": "c", "address": "10.0.0.2", "port": 8500}], []),
    HaproxySettings(log_stdout=True))["haproxy.cfg"].split("\n"))
GENERATED = []  # names and tags generated per config, for the count in the docstring
GOOD = {"service": "good", "id": "good-1", "node": "n", "address": "10.9.9.9", "port": 8080, "tags": ["svc"],
        "passing": True}


@st.composite
def instances(draw):
    return {
        "service": draw(st.one_of(text, st.sampled_from(["www", "www_hello", "serviceA.prod"]))),
        "id": draw(text),
        "node": draw(st.sampled_from(["n1", "n2"])),
        "address": draw(st.one_of(st.just("172.18.0.5"), st.just("fd00::1"), text)),
        "port": draw(st.one_of(st.integers(-5, 70000), st.just(80), text)),
        "tags": draw(st.lists(text, min_size=2, max_size=6)),
        "passing": draw(st.booleans()),
    }


CONFIGS = int(os.environ.get("AUTOPROXY_PROPERTY_EXAMPLES", "120"))


@settings(max_examples=CONFIGS, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(instances(), min_size=15, max_size=20), st.lists(text, max_size=3))
def test_any_names_and_tags_render_a_config_haproxy_accepts(tmp_path_factory, haproxy_bin, generated, domains):
    GENERATED.append(sum(2 + len(raw["tags"]) for raw in generated))
    table = build_routing_table([GOOD] + generated, ["test"] + domains)
    socket_dir = tmp_path_factory.getbasetemp()
    files = render_haproxy_config(table, HaproxySettings(runtime_socket=f"{socket_dir}/admin.sock", spare_backends=2))

    for line in files["haproxy.cfg"].split("\n"):
        assert line.startswith("#") or line in FIXED_LINES or SAFE_LINE_RE.match(line), line
    for line in files["hosts.map"].splitlines():
        assert SAFE_MAP_LINE_RE.match(line), line
    assert not re.search(r"server \S+ 6\.6\.6\.6", files["haproxy.cfg"]) and "backend evil" not in files["haproxy.cfg"]
    assert table["hosts"]["good.svc.test"] == "svc_good_backend", "one bad service never keeps the others out"

    warnings = "\n".join(table["warnings"])
    for raw in generated:
        if not valid_service_name(raw["service"]):
            assert show(raw["service"]) in warnings
        elif 0 < len(raw["id"]) <= 1024 and valid_address(raw["address"]) and raw["port"] == 80:
            for tag in raw["tags"]:
                if HOSTILE_CHARS_RE.search(tag.strip(" ")):
                    assert show(tag.strip(" ")) in warnings, tag

    ok, output = validate_files(files, (haproxy_bin,))
    assert ok, output


def test_the_property_test_saw_enough_generated_input():
    if os.environ.get("AUTOPROXY_PROPERTY_EXAMPLES") or not GENERATED:
        return  # a shortened or separately selected run: nothing to count
    assert sum(GENERATED) >= 10000, sum(GENERATED)
