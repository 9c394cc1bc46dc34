# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The proxy agent's reloads of a real HAProxy: what haproxy -c checks, and what it leaves out.

HAProxy runs in zero-warning mode (-dW, through a wrapper given as the agent's HAProxy binary),
where a server address it cannot resolve is an error: a real rejection of one service that the
renderer's own checks let through.
"""

from __future__ import annotations

import logging
import pathlib
import socket
import stat

import pytest

from ansible_collections.autoproxy.stack.agents._haproxy_backend import HaproxyBackend
from ansible_collections.autoproxy.stack.agents.proxy import haproxy_settings, parse_args
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import HaproxyError
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table

UNRESOLVABLE = "unresolvable.invalid"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def routes(*instances: tuple[str, str, list[str]]) -> dict:
    return build_routing_table([{"service": service, "id": f"{service}-1", "node": "n1", "address": address,
                                 "port": 8080, "tags": tags, "passing": True}
                                for service, address, tags in instances], ["test"])


@pytest.fixture
def backend(tmp_path: pathlib.Path, haproxy_bin: str):
    wrapper = tmp_path / "haproxy-dW"
    wrapper.write_text(f'#!/bin/sh\nexec {haproxy_bin} -dW "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    args = parse_args([f"--config-dir={tmp_path / 'cfg'}", f"--haproxy={wrapper}", f"--http-port={free_port()}",
                       f"--stats-port={free_port()}", f"--runtime-socket={tmp_path / 'admin.sock'}",
                       f"--master-socket={tmp_path / 'master.sock'}", "--spare-backends=1"])
    proxy = HaproxyBackend(args, haproxy_settings(args))
    yield proxy
    proxy.stop()


def test_a_reload_checks_what_changed_and_leaves_out_a_service_haproxy_rejects(backend, caplog):
    caplog.set_level(logging.ERROR, logger="autoproxy.proxy")
    backend.start(routes(("www", "127.0.0.1", ["hello"])))
    www = backend.applied["backends"]["hello_www_backend"]
    assert backend.accepted == (backend.settings, {"hello_www_backend": www})

    backend.reload(routes(("www", "127.0.0.1", ["hello"]), ("api", UNRESOLVABLE, [])), "a new service")
    assert sorted(backend.applied["backends"]) == ["hello_www_backend"]
    assert "service 'api' (backend api_backend) left out: haproxy -c rejects it" in caplog.text
    assert UNRESOLVABLE not in (pathlib.Path(backend.args.config_dir) / "haproxy.cfg").read_text()
    assert backend.accepted == (backend.settings, {"hello_www_backend": www}), "what HAProxy rejected is not accepted"

    # www changes (an option that needs a reload); api, rejected as it is, stays out unchecked.
    caplog.clear()
    changed = backend.screen(routes(("www", "127.0.0.1", ["hello", "balance=leastconn"]), ("api", UNRESOLVABLE, [])))
    backend.reload(changed, "an option changed")
    assert sorted(backend.applied["backends"]) == ["hello_www_backend"]
    assert "balance leastconn" in (pathlib.Path(backend.args.config_dir) / "haproxy.cfg").read_text()
    assert caplog.text == ""
    assert backend.accepted[1] == {"hello_www_backend": changed["backends"]["hello_www_backend"]}


def test_new_settings_check_every_backend_again(backend):
    backend.start(routes(("www", "127.0.0.1", ["hello"])))
    # A backend accepted under other settings is no proof under these: this one would pass
    # unchecked if the acceptance carried over.
    accepted = routes(("www", "127.0.0.1", ["hello"]), ("api", UNRESOLVABLE, []))
    backend.accepted = (backend.grown_spares(), dict(accepted["backends"]))
    backend.reload(accepted, "a new service")
    assert sorted(backend.applied["backends"]) == ["hello_www_backend"]


def test_what_the_last_validation_accepted_is_not_checked_again(backend):
    # Proof by a backend HAProxy would refuse: taken as accepted under the same settings, it is
    # not parsed, so it is kept (the agent never accepts such a backend itself; see above).
    backend.start(routes(("www", "127.0.0.1", ["hello"])))
    accepted = routes(("www", "127.0.0.1", ["hello"]), ("api", UNRESOLVABLE, []))
    backend.accepted = (backend.settings, dict(accepted["backends"]))
    files, kept = backend.validated(accepted)
    assert sorted(kept["backends"]) == ["api_backend", "hello_www_backend"]
    assert UNRESOLVABLE in files["haproxy.cfg"]


def test_a_refused_reload_makes_the_next_one_check_everything(backend):
    backend.start(routes(("www", "127.0.0.1", ["hello"])))
    good = routes(("www", "127.0.0.1", ["hello"]), ("api", "127.0.0.2", []))
    backend.validated(good)
    assert backend.accepted is not None
    backend.args.master_socket = str(pathlib.Path(backend.args.config_dir) / "no-master.sock")
    with pytest.raises(HaproxyError):
        backend.reload(good, "the master is unreachable")
    assert backend.accepted is None
