# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registrator agent's settings, declared once (see _agent_settings).

Beside our ``--`` spellings, gliderlabs/registrator's single-dash flags are aliases, and its
registry URI (``consul://host:port``) is the optional positional argument.
"""

from __future__ import annotations

import socket

from ansible_collections.autoproxy.stack.plugins.module_utils._agent_settings import (
    CONSUL_CONNECTION,
    Setting,
    by_name,
)

REGISTRATOR_SETTINGS: tuple[Setting, ...] = (
    Setting("registry_uri", positional=True,
            help="registrator-style consul://host:port or consul-tls://...; wins over --consul"),
    *CONSUL_CONNECTION,
    Setting("internal", kind="bool", default=False, aliases=("-internal",),
            help="register the container's IP and exposed port (else host IP and published port)"),
    Setting("host_ip", flag="--ip", aliases=("-ip",), help="host IP to register for published ports"),
    Setting("network", help="network whose IP is registered (label autoproxy.network wins)"),
    Setting("explicit", kind="bool", default=False, aliases=("-explicit",),
            help="only register containers with SERVICE_NAME"),
    Setting("ip_from_label", flag="--use-ip-from-label", aliases=("-useIpFromLabel",),
            help="take the service IP from this label"),
    Setting("tags", kind="list", separator=",", default="", aliases=("-tags",),
            help="comma list of tags added to every service"),
    Setting("hostname", default_factory=socket.gethostname, help="host name used in service IDs"),
    Setting("deregister", choices=("always", "on-success"), default="always", aliases=("-deregister",),
            help="always: deregister when a container dies; on-success: keep crashed containers registered"),
    Setting("cleanup", kind="bool", default=False, aliases=("-cleanup",),
            help="also remove this host's registrator-style IDs that no live container backs"),
    Setting("resync", kind="float", default=10.0, aliases=("-resync",),
            help="seconds between full reconciliations (0: only at start and after faults)"),
    Setting("retry_attempts", kind="int", default=-1, aliases=("-retry-attempts",),
            help="Consul attempts at start before exiting (-1: forever)"),
    Setting("retry_interval", kind="int", default=2000, aliases=("-retry-interval",),
            help="milliseconds between those attempts"),
    Setting("ttl", kind="int", default=0, aliases=("-ttl",), help="accepted for registrator compatibility; no effect"),
    Setting("ttl_refresh", kind="int", default=0, aliases=("-ttl-refresh",), help="as --ttl"),
    Setting("filter_label", help="only manage containers with this label (KEY or KEY=VALUE)"),
    Setting("script_checks", kind="bool", default=True, flag="--no-script-checks",
            help="refuse SERVICE_CHECK_SCRIPT (Consul would run a container-given command)"),
    Setting("health_ttl", default="24h", help="TTL of the check that mirrors Docker's HEALTHCHECK"),
    Setting("probe_interval", kind="float", default=0.1,
            help="seconds between fast probes of a new service's check (0: leave it to Consul)"),
    Setting("probe_timeout", kind="float", default=60.0, help="seconds to keep probing a new service"),
    Setting("drain", kind="bool", default=True, flag="--no-drain",
            help="do not deregister on the kill that ends a container (wait for die)"),
    Setting("drain_grace", kind="float", default=60.0,
            help="seconds a drained container that still runs stays out of Consul"),
)
REGISTRATOR = by_name(REGISTRATOR_SETTINGS)
