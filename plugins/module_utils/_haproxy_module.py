# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the haproxy_config module adds around the shared rendering and applying code.

PRIVATE to the collection. Stdlib only: naming the service behind an HAProxy finding,
packing a configuration for ``haproxy -c`` inside a container, and a master CLI reload that
checks HAProxy's own account of whether it worked.
"""

from __future__ import annotations

import io
import re
import tarfile
import time

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import (
    CONFIG_NAME,
    HaproxyError,
    findings,
    reported_sections,
)

_SHOW_PROC_MASTER_RE = re.compile(r"^\s*\d+\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]", re.MULTILINE)

# Runs inside the container: unpack the files into a scratch directory, check, clean up.
CONTAINER_CHECK_SCRIPT = (
    'd=$(mktemp -d) && tar -xf - -C "$d" && "$0" -c -f "$d/' + CONFIG_NAME + '"; s=$?; rm -rf "$d"; exit $s'
)
# Runs inside the autoproxy agent image, which carries this collection's module_utils.
CONTAINER_MASTER_SCRIPT = (
    "import sys\n"
    "from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import master_command\n"
    "sys.stdout.write(master_command(sys.argv[1], sys.argv[2]))\n"
)


class ReloadError(Exception):
    pass


def blame(output, config_text, table):
    """Where each line HAProxy complains about comes from: a service's backend, or the proxy settings.

    Returns one description per distinct place, in the order HAProxy reported them.
    """
    places = []
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


def tar_files(files):
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


def master_state(show_proc):
    """(reloads, failed reloads) of the master in ``show proc`` output, or None if absent."""
    match = _SHOW_PROC_MASTER_RE.search(show_proc)
    return (int(match.group(1)), int(match.group(2))) if match else None


def verified_reload(send, timeout=10.0, interval=0.2):
    """Reload through the master CLI and wait until HAProxy says whether the new config loaded.

    ``send(command)`` returns the master CLI's answer or raises HaproxyError. HAProxy 3.x answers ``reload`` with
    ``Success=0|1``; 2.x answers nothing, so the reload and failure counters of ``show proc``
    decide. Raises ReloadError naming what HAProxy reported.
    """
    before = master_state(send("show proc"))
    if before is None:
        raise ReloadError("the master CLI did not answer 'show proc'; is this HAProxy's master socket (-S)?")
    answer = send("reload")
    if "Success=0" in answer:
        raise ReloadError("HAProxy refused the new configuration: " + findings(answer))
    if "Success=1" in answer:
        return answer.strip()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        try:
            after = master_state(send("show proc"))
        except HaproxyError:
            continue  # the master re-executes itself and refuses connections meanwhile
        if after is None or after[0] <= before[0]:
            continue
        if after[1] > before[1]:
            raise ReloadError("HAProxy refused the new configuration and kept the old one (show proc counts a "
                              "failed reload); its log says why")
        return f"reloads: {after[0]}"
    raise ReloadError(f"HAProxy did not report the reload within {timeout:g}s")
