# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the haproxy_config module adds around the shared rendering and applying code.

PRIVATE to the collection. Stdlib only: naming the service behind an HAProxy finding, packing
a configuration for ``haproxy -c`` inside a container, and how to reload inside one (the master
CLI reload itself is _haproxy_master's).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from typing import Any

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import (
    CONFIG_NAME,
    reported_sections,
)

# Runs inside the container: unpack the files into a scratch directory, check, clean up.
CONTAINER_CHECK_SCRIPT = (
    'd=$(mktemp -d) && tar -xf - -C "$d" && "$0" -c -f "$d/' + CONFIG_NAME + '"; s=$?; rm -rf "$d"; exit $s'
)
# The agent image's reload subcommand (agents/haproxy_reload.py): verified_reload() run next to
# the master socket.
CONTAINER_RELOAD_COMMAND = ("python3", "-m", "ansible_collections.autoproxy.stack.agents", "reload")


def blame(output: str, config_text: str, table: Mapping[str, Any]) -> list[str]:
    """Where each line HAProxy complains about comes from: a service's backend, or the proxy settings.

    Returns one description per distinct place, in the order HAProxy reported them.
    """
    places: list[str] = []
    for kind, name in reported_sections(output, config_text):
        backend = (table.get("backends") or {}).get(name) if kind == "backend" else None
        if backend is not None:
            place = f"service {backend['service']!r} (backend {name!r})"
        elif kind:
            place = f"the proxy settings ({kind} {name}".rstrip() + ")"
        else:
            place = "the proxy settings"
        if place not in places:
            places.append(place)
    return places


def tar_files(files: Mapping[str, str]) -> bytes:
    """The files as an uncompressed tar archive, for ``tar -x`` inside a container."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in sorted(files):
            data = files[name].encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
