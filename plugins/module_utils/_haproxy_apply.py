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
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
)

CONFIG_NAME = "haproxy.cfg"


class HaproxyError(Exception):
    pass


def read_config_dir(path: str, names: Iterable[str]) -> dict[str, str | None]:
    """The current content of each file, or None for a missing one."""
    current: dict[str, str | None] = {}
    for name in names:
        try:
            with open(os.path.join(path, name), encoding="utf-8") as handle:
                current[name] = handle.read()
        except FileNotFoundError:
            current[name] = None
    return current


def write_files(path: str, files: Mapping[str, str], mode: int = 0o644) -> None:
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


def validate_files(files: Mapping[str, str], haproxy_cmd: Sequence[str] = ("haproxy",)) -> tuple[bool, str]:
    """Run ``haproxy -c`` on the files in a scratch directory; return (ok, output)."""
    scratch = tempfile.mkdtemp(prefix="autoproxy-check-")
    try:
        write_files(scratch, files)
        return validate_path(os.path.join(scratch, CONFIG_NAME), haproxy_cmd)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def validate_path(cfg_path: str, haproxy_cmd: Sequence[str] = ("haproxy",)) -> tuple[bool, str]:
    try:
        proc = subprocess.run(list(haproxy_cmd) + ["-c", "-f", cfg_path], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=60, check=False)
    except OSError as exc:
        raise HaproxyError("cannot run {}: {}".format(" ".join(haproxy_cmd), exc)) from exc
    return proc.returncode == 0, findings(proc.stdout.decode("utf-8", "replace"))


def findings(output: str) -> str:
    """HAProxy's ALERT and WARNING lines (its version NOTICEs say nothing about the config)."""
    lines = [line for line in output.splitlines() if "[ALERT]" in line or "[WARNING]" in line]
    return "\n".join(lines) if lines else output.strip()


def cli_command(socket_path: str, command: str, timeout: float = 10.0) -> str:
    """Send one command to an HAProxy CLI socket (master or runtime) and return its answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            sock.sendall(command.encode() + b"\n")
            # Half-close: the CLI answers one command and closes instead of waiting for more.
            sock.shutdown(socket.SHUT_WR)
            chunks: list[bytes] = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError as exc:
        raise _failed(socket_path, command, exc) from exc
    return b"".join(chunks).decode("utf-8", "replace")


def _failed(socket_path: str, command: str, exc: OSError) -> HaproxyError:
    return HaproxyError(f"HAProxy socket {socket_path}: {command!r} failed: {exc}")


class CliSession:
    """Several commands on one connection to an HAProxy CLI socket, in interactive mode.

    ``prompt`` switches the connection to interactive mode: HAProxy keeps it open and ends each
    answer with a ``"\\n> "`` prompt (HAProxy management guide, section 9.3, "prompt"; the same
    in 2.6 and 3.0). One connection per batch spares HAProxy an accept and a new CLI session per
    command. Only for commands whose answers have no line starting with ``"> "`` (the server,
    health and map commands do not; ``show`` dumps may).

    Use as a context manager; ``command(text)`` returns the answer without the prompt, stripped.
    Raises HaproxyError when the socket fails or closes (a reload ends the worker's sessions).
    """

    PROMPT = b"\n> "

    def __init__(self, socket_path: str, timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.sock: socket.socket | None = None

    def __enter__(self) -> CliSession:
        try:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(self.timeout)
                self.sock.connect(self.socket_path)
            except OSError as exc:
                raise _failed(self.socket_path, "prompt", exc) from exc
            self.command("prompt")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def command(self, command: str) -> str:
        if self.sock is None:
            raise HaproxyError(f"HAProxy socket {self.socket_path}: {command!r} on a closed session")
        answer = b""
        try:
            self.sock.sendall(command.encode() + b"\n")
            while not answer.endswith(self.PROMPT):
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise HaproxyError(f"HAProxy socket {self.socket_path}: closed while answering {command!r}")
                answer += chunk
        except OSError as exc:
            raise _failed(self.socket_path, command, exc) from exc
        return answer[: -len(self.PROMPT)].decode("utf-8", "replace").strip()


# HAProxy points at a line as '[<file>:<line>]' in its ALERT and WARNING messages.
CONFIG_LINE_RE = re.compile(r"\[[^\]\s]*" + re.escape(CONFIG_NAME) + r":([0-9]+)\]")
_SECTION_RE = re.compile(r"(global|defaults|frontend|backend|listen)\b\s*(\S*)")


def _section_of(lines: Sequence[str], line_number: int) -> tuple[str, str]:
    for index in range(min(line_number, len(lines)) - 1, -1, -1):
        line = lines[index]
        if not line.startswith((" ", "\t")):
            match = _SECTION_RE.match(line)
            if match:
                return match.group(1), match.group(2)
    return "", ""


def section_at(config_text: str, line_number: int) -> tuple[str, str]:
    """``(kind, name)`` of the section that holds 1-based ``line_number`` of the config; ``("", "")`` if none."""
    # Lines as HAProxy numbers them: split at newlines only.
    return _section_of(config_text.split("\n"), line_number)


def reported_sections(output: str, config_text: str) -> list[tuple[str, str]]:
    """``(kind, name)`` of the section of each config line HAProxy's output points at, in its order."""
    lines = config_text.split("\n")
    return [_section_of(lines, int(number)) for number in CONFIG_LINE_RE.findall(output)]


def without_backends(table: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The routing table minus some backends and the hosts that pointed at them."""
    left_out = set(names)
    return dict(
        table,
        backends={name: backend for name, backend in table["backends"].items() if name not in left_out},
        hosts={host: backend for host, backend in table["hosts"].items() if backend not in left_out},
    )


def _blamed_backends(cfg: str, output: str, names: Collection[str]) -> set[str]:
    """Those of ``names`` whose backend sections hold the lines HAProxy complained about."""
    return {name for kind, name in reported_sections(output, cfg) if kind == "backend" and name in names}


def _first_failing_backend(
    table: Mapping[str, Any],
    settings: HaproxySettings | None,
    haproxy_cmd: Sequence[str],
    candidates: Iterable[str] | None = None,
) -> str | None:
    """Bisect for a backend that makes validation fail when HAProxy's output names no line of one.

    Only the ``candidates`` (default: every backend) are rendered, the rest of the config as for
    the whole table, so each step checks a part of the config that failed.
    """
    names = sorted(table["backends"] if candidates is None else candidates)
    low, high = 0, len(names)  # the first `high` backends fail, the first `low` pass
    while high - low > 1:
        middle = (low + high) // 2
        ok, _unused = validate_files(render_haproxy_config(table, settings, backends=names[:middle]), haproxy_cmd)
        low, high = (middle, high) if ok else (low, middle)
    return names[low] if names else None


def render_validated(
    table: dict[str, Any],
    settings: HaproxySettings | None,
    haproxy_cmd: Sequence[str] = ("haproxy",),
    accepted: Mapping[str, Any] | None = None,
) -> tuple[dict[str, str], dict[str, Any], list[tuple[str, Any, str]]]:
    """Render a table and validate it; leave out the backends HAProxy rejects.

    ``accepted`` maps backend names to the content that a validation with the same ``settings``
    accepted before: HAProxy does not parse such a backend again, so a reload for one changed
    service checks that service's section, not the thousand others. The checked config is the
    whole one without those sections (its frontend, map and other sections are the same). Sound
    because a backend's servers and options render into its own section and name nothing outside
    it, and the frontend picks backends by name from the map at request time.

    Returns ``(files, kept_table, rejected)`` where files render the whole kept table and
    rejected is a list of ``(backend, service, reason)``. Raises HaproxyError when even the
    table without any backend does not validate (then the settings are at fault, not a service).
    """
    rejected: list[tuple[str, Any, str]] = []
    known = accepted or {}
    while True:
        files = render_haproxy_config(table, settings)
        unproven = [name for name, backend in table["backends"].items() if known.get(name) != backend]
        partial = len(unproven) < len(table["backends"])
        checked = render_haproxy_config(table, settings, backends=unproven) if partial else files
        ok, output = validate_files(checked, haproxy_cmd)
        if ok:
            return files, table, rejected
        if not unproven:
            raise HaproxyError(f"the configuration does not validate even without any backend: {output}")
        blamed = _blamed_backends(checked[CONFIG_NAME], output, set(unproven))
        if not blamed:
            first = _first_failing_backend(table, settings, haproxy_cmd, unproven)
            blamed = {first} if first else set()
        if not blamed:
            raise HaproxyError(f"the configuration does not validate: {output}")
        rejected += [(name, table["backends"][name].get("service"), output) for name in sorted(blamed)]
        table = without_backends(table, blamed)
