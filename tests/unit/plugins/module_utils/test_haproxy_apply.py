# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Validate, install and reload against a real HAProxy binary (no mocks)."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import (
    HaproxyError,
    _first_failing_backend,
    cli_command,
    read_config_dir,
    render_validated,
    reported_sections,
    section_at,
    validate_files,
    write_files,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rendered(tmp_path, instances=()):
    settings = HaproxySettings(http_port=free_port(), stats_port=free_port(),
                               runtime_socket=str(tmp_path / "admin.sock"))
    return render_haproxy_config(build_routing_table(list(instances), ["test"]), settings)


def test_section_at_finds_the_enclosing_section():
    table = build_routing_table([{"service": "www", "id": "w1", "address": "10.0.0.1", "port": 80,
                                  "tags": ["hello"], "passing": True}], ["test"])
    text = render_haproxy_config(table)["haproxy.cfg"]
    lines = text.split("\n")
    server = next(i for i, line in enumerate(lines, 1) if "server " in line and "10.0.0.1" in line)
    assert section_at(text, server) == ("backend", "hello_www_backend")
    assert section_at(text, 4) == ("global", "")
    assert section_at(text, 0) == ("", "")


def test_reported_sections_follow_haproxys_line_references_in_order():
    text = ("# top\nglobal\n    daemon\n\nfrontend http\n    bind :80\n"
            "backend b1\n    balance x\n\tserver s 1.2.3.4:80\n")
    output = ("[ALERT]    (1) : config : parsing [/tmp/x/haproxy.cfg:9] : bad server\n"
              "[WARNING]  (1) : config : parsing [/tmp/x/haproxy.cfg:6] : odd bind\n"
              "[ALERT]    (1) : config : parsing [/tmp/x/haproxy.cfg:1] : before any section\n"
              "[ALERT]    (1) : config : parsing [/tmp/x/other.cfg:3] : another file\n")
    assert reported_sections(output, text) == [("backend", "b1"), ("frontend", "http"), ("", "")]


def test_a_rendered_config_validates(tmp_path, haproxy_bin):
    ok, output = validate_files(rendered(tmp_path), (haproxy_bin,))
    assert ok, output


def test_a_broken_config_is_rejected_with_haproxys_reason(tmp_path, haproxy_bin):
    files = rendered(tmp_path)
    files["haproxy.cfg"] += "backend broken\n    balance no-such-algorithm\n"
    ok, output = validate_files(files, (haproxy_bin,))
    assert not ok
    assert "balance only supports" in output
    assert "haproxy.cfg:" in output, "the reason names the line"


def test_write_files_replaces_each_file_whole(tmp_path):
    target = tmp_path / "live"
    write_files(str(target), {"haproxy.cfg": "one\n", "hosts.map": "a b\n"})
    write_files(str(target), {"haproxy.cfg": "two\n", "hosts.map": "c d\n"})
    assert read_config_dir(str(target), ["haproxy.cfg", "hosts.map", "missing"]) == {
        "haproxy.cfg": "two\n", "hosts.map": "c d\n", "missing": None}
    assert sorted(p.name for p in target.iterdir()) == ["haproxy.cfg", "hosts.map"]


def ask(master, command, timeout=10.0):
    """The master re-executes itself on reload and briefly refuses connections: retry."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return cli_command(master, command)
        except HaproxyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_master_cli_reload_starts_a_new_worker(tmp_path, haproxy_bin):
    live = tmp_path / "live"
    write_files(str(live), rendered(tmp_path))
    master = str(tmp_path / "master.sock")
    proc = subprocess.Popen([haproxy_bin, "-W", "-S", master + ",level,admin", "-f", str(live / "haproxy.cfg")])
    try:
        workers = [line.split()[0] for line in ask(master, "show proc").splitlines() if " worker " in line]
        assert len(workers) == 1
        ask(master, "reload")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = [line.split()[0] for line in ask(master, "show proc").splitlines() if " worker " in line]
            if now and now[0] != workers[0]:
                break
            time.sleep(0.1)
        assert now and now[0] != workers[0], "no new worker after reload"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_master_command_names_the_socket_when_it_fails(tmp_path):
    with pytest.raises(HaproxyError, match="nothing.sock"):
        cli_command(str(tmp_path / "nothing.sock"), "show proc")


def www_api_zzz(tmp_path, zzz_address):
    """Settings and a table of three services, api's server at an address HAProxy cannot resolve."""
    settings = HaproxySettings(http_port=free_port(), stats_port=free_port(),
                               runtime_socket=str(tmp_path / "admin.sock"))
    table = build_routing_table([
        {"service": "www", "id": "a", "address": "127.0.0.1", "port": 80, "tags": ["hello"], "passing": True},
        {"service": "api", "id": "b", "address": "unresolvable.invalid", "port": 80, "tags": [], "passing": True},
        {"service": "zzz", "id": "c", "address": zzz_address, "port": 80, "tags": [], "passing": True},
    ], ["test"])
    return settings, table


def test_render_validated_leaves_out_only_the_backend_haproxy_rejects(tmp_path, haproxy_bin):
    settings, table = www_api_zzz(tmp_path, "127.0.0.2")
    # Zero-warning mode (-dW) makes HAProxy refuse a server it cannot resolve: a real rejection
    # of one backend that the renderer's own checks let through.
    files, kept, rejected = render_validated(table, settings, (haproxy_bin, "-dW"))
    assert [(name, service) for name, service, _reason in rejected] == [("api_backend", "api")]
    assert "unresolvable.invalid" in rejected[0][2]
    assert sorted(kept["backends"]) == ["hello_www_backend", "zzz_backend"]
    assert "api.test" not in files["hosts.map"] and "www.hello.test hello_www_backend" in files["hosts.map"]
    ok, output = validate_files(files, (haproxy_bin, "-dW"))
    assert ok, output


def test_an_accepted_backend_is_not_checked_again_and_still_rendered_whole(tmp_path, haproxy_bin):
    # Accepted as it is now, api's unresolvable server is not parsed again: only zzz is rejected
    # (proof that the accepted backend was left out of the check, as both fail under -dW).
    settings, table = www_api_zzz(tmp_path, "unresolvable.invalid")
    accepted = {"api_backend": dict(table["backends"]["api_backend"])}
    files, kept, rejected = render_validated(table, settings, (haproxy_bin, "-dW"), accepted=accepted)
    assert [(name, service) for name, service, _reason in rejected] == [("zzz_backend", "zzz")]
    assert sorted(kept["backends"]) == ["api_backend", "hello_www_backend"]
    assert "unresolvable.invalid:80" in files["haproxy.cfg"] and "api.test api_backend" in files["hosts.map"]


def test_a_backend_accepted_with_other_content_is_checked_again(tmp_path, haproxy_bin):
    settings, table = www_api_zzz(tmp_path, "unresolvable.invalid")
    before = dict(table["backends"]["api_backend"], servers=[])
    files, kept, rejected = render_validated(table, settings, (haproxy_bin, "-dW"),
                                             accepted={"api_backend": before, "zzz_backend": before})
    assert [name for name, _service, _reason in rejected] == ["api_backend", "zzz_backend"]
    assert sorted(kept["backends"]) == ["hello_www_backend"]
    ok, output = validate_files(files, (haproxy_bin, "-dW"))
    assert ok, output


def test_bisect_finds_the_failing_backend_without_a_line_number(tmp_path, haproxy_bin):
    settings = HaproxySettings(http_port=free_port(), stats_port=free_port(),
                               runtime_socket=str(tmp_path / "admin.sock"))
    instances = [{"service": f"s{i:02d}", "id": "x", "address": "127.0.0.1", "port": 80, "tags": [], "passing": True}
                 for i in range(9)]
    instances[6]["address"] = "nowhere.invalid"
    table = build_routing_table(instances, ["test"])
    assert _first_failing_backend(table, settings, (haproxy_bin, "-dW")) == "s06_backend"
