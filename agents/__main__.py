# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Entry point of the agent image: ``autoproxy-agent registrator|proxy|reload [options]``."""

from __future__ import annotations

import sys

from ansible_collections.autoproxy.stack.agents._common import env_default, setup_logging

USAGE = "usage: autoproxy-agent {registrator|proxy|reload} [options]  (--help after the name for its options)"


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("registrator", "proxy", "reload"):
        print(USAGE, file=sys.stderr)
        return 2
    setup_logging(env_default("AUTOPROXY_LOG_LEVEL", "INFO"))
    # Each agent imports only what it runs.
    if argv[0] == "registrator":
        from ansible_collections.autoproxy.stack.agents import registrator
        return registrator.main(argv[1:])
    if argv[0] == "reload":
        from ansible_collections.autoproxy.stack.agents import haproxy_reload
        return haproxy_reload.main(argv[1:])
    from ansible_collections.autoproxy.stack.agents import proxy
    return proxy.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
