# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Validating, installing and reloading an HAProxy configuration directory.

A configuration is a set of files (haproxy.cfg and the files it names relative to itself,
thanks to ``default-path config``). It is validated in a candidate directory exactly as it
will run, and only then copied over the live files, so an invalid render never replaces a
working one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile

CONFIG_NAME = "haproxy.cfg"


class HaproxyError(Exception):
    pass


def read_config_dir(path, names):
    """The current content of each file, or None for a missing one."""
    current = {}
    for name in names:
        try:
            with open(os.path.join(path, name), encoding="utf-8") as handle:
                current[name] = handle.read()
        except FileNotFoundError:
            current[name] = None
    return current


def write_files(path, files, mode=0o644):
    """Write each file atomically (temp file in the same directory, then rename)."""
    os.makedirs(path, exist_ok=True)
    # haproxy.cfg last: a reader that sees the new cfg also sees the files it names.
    for name in sorted(files, key=lambda n: n == CONFIG_NAME):
        fd, tmp = tempfile.mkstemp(dir=path, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(files[name])
            os.chmod(tmp, mode)
            os.replace(tmp, os.path.join(path, name))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def validate_files(files, haproxy_cmd=("haproxy",)):
    """Run ``haproxy -c`` on the files in a scratch directory; return (ok, output)."""
    scratch = tempfile.mkdtemp(prefix="autoproxy-check-")
    try:
        write_files(scratch, files)
        return validate_path(os.path.join(scratch, CONFIG_NAME), haproxy_cmd)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def validate_path(cfg_path, haproxy_cmd=("haproxy",)):
    try:
        proc = subprocess.run(list(haproxy_cmd) + ["-c", "-f", cfg_path], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=60, check=False)
    except OSError as exc:
        raise HaproxyError("cannot run {}: {}".format(" ".join(haproxy_cmd), exc)) from exc
    output = proc.stdout.decode("utf-8", "replace").strip()
    # HAProxy's version NOTICEs say nothing about the config; keep what it found.
    findings = [line for line in output.splitlines() if "[ALERT]" in line or "[WARNING]" in line]
    return proc.returncode == 0, "\n".join(findings) if findings else output


def master_command(socket_path, command, timeout=10.0):
    """Send one command to HAProxy's master CLI and return its answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            sock.sendall(command.encode() + b"\n")
            # Half-close: the CLI answers one command and closes instead of waiting for more.
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError as exc:
        raise HaproxyError(f"HAProxy master socket {socket_path}: {command} failed: {exc}") from exc
    return b"".join(chunks).decode("utf-8", "replace")
