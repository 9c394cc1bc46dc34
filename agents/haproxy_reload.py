# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``autoproxy-agent reload``: reload the HAProxy next to it through its master CLI and check it took.

The haproxy_config module runs this inside a container (``docker exec``) so the reload and its
check run where the master socket is. Prints what HAProxy reported; exit status 0 when the new
configuration runs, 1 when HAProxy refused it or did not say, 2 when the master CLI is unreachable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import HaproxyError, cli_command
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_master import ReloadError, verified_reload


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="autoproxy-agent reload", description=__doc__)
    parser.add_argument("--master-socket", default="/run/haproxy/master.sock", help="HAProxy's master CLI socket")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for HAProxy's account")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    try:
        print(verified_reload(lambda command: cli_command(args.master_socket, command), timeout=args.timeout))
    except ReloadError as exc:
        print(exc, file=sys.stderr)
        return 1
    except HaproxyError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
