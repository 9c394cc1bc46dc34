# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._addresses import (
    MAX_PORT,
    host_port,
    parse_port,
    split_host_port,
)


@pytest.mark.parametrize(("value", "port"), [
    (80, 80), ("80", 80), (1, 1), ("65535", MAX_PORT), ("00080", 80),
    (0, None), ("0", None), (65536, None), ("65536", None), ("123456", None), (-1, None),
    (True, None), (False, None), ("+80", None), (" 80", None), ("80 ", None), ("8_0", None),
    ("\u00b2", None), ("80\n", None), ("", None), (None, None), (80.0, None), ("0x50", None),
])
def test_parse_port_takes_ints_and_ascii_digits_in_range(value, port):
    assert parse_port(value) == port


@pytest.mark.parametrize(("address", "port", "text"), [
    ("10.0.0.1", 80, "10.0.0.1:80"),
    ("web.example", 8080, "web.example:8080"),
    ("fd00::1", 443, "[fd00::1]:443"),
    ("::ffff:10.0.0.1", 80, "[::ffff:10.0.0.1]:80"),
])
def test_host_port_brackets_ipv6_only(address, port, text):
    assert host_port(address, port) == text


def test_host_port_refuses_a_port_that_is_not_an_int():
    with pytest.raises(ValueError):
        host_port("10.0.0.1", "80\nserver evil")


@pytest.mark.parametrize(("address", "port"), [("10.0.0.1", 80), ("fd00::1", 443), ("web.example", 1)])
def test_split_host_port_reads_what_host_port_writes(address, port):
    assert split_host_port(host_port(address, port)) == (address, port)


@pytest.mark.parametrize("text", ["10.0.0.1", "10.0.0.1:", ":80", "10.0.0.1:0", "10.0.0.1:x", "[fd00::1]:99999", ""])
def test_split_host_port_without_a_valid_port_is_none(text):
    assert split_host_port(text) is None
