# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import io
import pathlib
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time

import pytest

from ansible_collections.autoproxy.stack.agents.__main__ import main as agent_main
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import (
    HaproxyError,
    cli_command,
    findings,
    validate_files,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_master import (
    ReloadError,
    master_state,
    verified_reload,
    worker_pids,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_module import blame, tar_files
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table

TABLE = build_routing_table(
    [{"service": "www", "id": "w1", "address": "10.0.0.1", "port": 80, "tags": ["hello"], "passing": True},
     {"service": "api", "id": "a1", "address": "10.0.0.2", "port": 81, "tags": [], "passing": True}],
    ["test"],
)


def test_blame_names_the_service_behind_a_line_real_haproxy_refuses(haproxy_bin):
    files = render_haproxy_config(TABLE)
    # Break one backend by hand; the rendering itself never produces an invalid line.
    files["haproxy.cfg"] = files["haproxy.cfg"].replace("backend api_backend\n    balance roundrobin",
                                                        "backend api_backend\n    balance no-such-algorithm")
    ok, output = validate_files(files, (haproxy_bin,))
    assert not ok
    assert blame(output, files["haproxy.cfg"], TABLE) == ["service 'api' (backend 'api_backend')"]


def test_blame_points_at_settings_outside_backends(haproxy_bin):
    files = render_haproxy_config(TABLE, HaproxySettings(hard_stop_after="999999999d"))
    ok, output = validate_files(files, (haproxy_bin,))
    assert not ok
    assert "the proxy settings (global)" in blame(output, files["haproxy.cfg"], TABLE)


def test_findings_keep_alerts_and_warnings_only():
    output = "[NOTICE] (1) : haproxy version is 2.6\n[ALERT] (1) : bad\n[WARNING] (1) : meh\n"
    assert findings(output) == "[ALERT] (1) : bad\n[WARNING] (1) : meh"
    assert findings("Configuration file is valid\n") == "Configuration file is valid"


def test_tar_files_unpacks_to_the_same_files():
    files = {"haproxy.cfg": "global\n", "hosts.map": "a b\n"}
    with tarfile.open(fileobj=io.BytesIO(tar_files(files))) as archive:
        assert {m.name: archive.extractfile(m).read().decode() for m in archive.getmembers()} == files


def test_master_state_reads_show_proc_of_haproxy_2_6():
    show_proc = ("#<PID>          <type>          <reloads>       <uptime>        <version>\n"
                 "10832           master          2 [failed: 1]   0d00h00m03s     2.6.12-1+deb12u4\n"
                 "# workers\n10839           worker          1               0d00h00m02s     2.6.12\n")
    assert master_state(show_proc) == (2, 1)
    assert master_state("Unknown command") is None


@pytest.fixture()
def running_haproxy(haproxy_bin):
    """A real HAProxy in master-worker mode on a loopback port, with its master socket."""
    # A short directory: a Unix socket path is limited to 107 bytes.
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="aphx-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("global\n    default-path config\ndefaults\n    mode http\n    timeout connect 1s\n"
                   f"    timeout client 1s\n    timeout server 1s\nfrontend f\n    bind 127.0.0.1:{port}\n")
    sock = str(tmp_path / "master.sock")
    proc = subprocess.Popen([haproxy_bin, "-W", "-S", sock + ",level,admin", "-f", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if master_state(cli_command(sock, "show proc")):
                break
        except HaproxyError:
            pass
        time.sleep(0.05)
    yield cfg, sock
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_verified_reload_reports_a_reload_that_took(running_haproxy):
    sock = running_haproxy[1]
    answer = verified_reload(lambda command: cli_command(sock, command))
    assert answer.startswith(("reloads: ", "Success=1"))


def test_verified_reload_fails_when_haproxy_keeps_the_old_config(running_haproxy):
    cfg, sock = running_haproxy
    cfg.write_text(cfg.read_text() + "this is not a keyword\n")
    with pytest.raises(ReloadError, match="refused the new configuration"):
        verified_reload(lambda command: cli_command(sock, command))


def test_verified_reload_fails_on_a_socket_that_is_not_a_master():
    with pytest.raises(ReloadError, match="did not answer 'show proc'"):
        verified_reload(lambda command: "Unknown command\n")


def test_worker_pids_reads_show_proc():
    show_proc = ("#<PID>          <type>          <reloads>       <uptime>        <version>\n"
                 "10832           master          2 [failed: 1]   0d00h00m03s     2.6.12-1+deb12u4\n"
                 "# workers\n10839           worker          1               0d00h00m02s     2.6.12\n"
                 "10840           worker          0               0d00h00m01s     2.6.12\n"
                 "# old workers\n")
    assert worker_pids(show_proc) == {10839, 10840}
    assert worker_pids("Unknown command") == set()


def test_verified_reload_waits_until_ready_sees_a_new_worker(running_haproxy):
    sock = running_haproxy[1]
    seen = []

    def ready(new_workers):
        seen.append(set(new_workers))
        return bool(new_workers)

    verified_reload(lambda command: cli_command(sock, command), interval=0.05, ready=ready)
    assert seen and seen[-1], "ready() was asked until a new worker ran"


def test_agent_reload_subcommand_reports_and_fails_like_the_module(running_haproxy, capsys):
    cfg, sock = running_haproxy
    assert agent_main(["reload", "--master-socket", sock]) == 0
    assert capsys.readouterr().out.startswith(("reloads: ", "Success=1"))
    cfg.write_text(cfg.read_text() + "this is not a keyword\n")
    assert agent_main(["reload", "--master-socket", sock]) == 1
    assert "refused the new configuration" in capsys.readouterr().err
    assert agent_main(["reload", "--master-socket", sock + ".missing"]) == 2
