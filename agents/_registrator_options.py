# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registrator agent's command line: our flags and gliderlabs/registrator's single-dash ones."""

from __future__ import annotations

import argparse
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

from ansible_collections.autoproxy.stack.agents._common import env_default

log = logging.getLogger("autoproxy.registrator")

DESCRIPTION = """The registrator agent: Docker events -> Consul service registrations.

Accepts gliderlabs/registrator's SERVICE_* environment variables and labels (plugins/module_utils/
_containers.py) and its flags. It subscribes to Docker events before it lists containers (no
start-up race), handles each container's events in order on that container's own queue, reconnects
the event stream forever, drains a container from Consul on the ``kill`` that ends it (before
``die``), mirrors Docker's HEALTHCHECK into a TTL check, probes a new service's check at a fast
pace so it is routed as soon as it answers, and reconciles Consul with Docker both ways at a fixed
period and whenever Consul comes back (a dev agent restarts empty). Only services carrying its owner
mark are ever removed, and an unchanged service is never re-registered (the digest in Meta says so).
"""


def _flag(parser: argparse.ArgumentParser, long_name: str, registrator_name: str | None, **kwargs: Any) -> None:
    """An option under our spelling and registrator's single-dash one."""
    names = [long_name] + ([registrator_name] if registrator_name else [])
    parser.add_argument(*names, **kwargs)


def _consul_url(uri: str) -> str:
    """registrator's registry URI (consul://host:port, consul-tls://host:port) or a plain URL."""
    for prefix, scheme in (("consul-tls://", "https://"), ("consul://", "http://")):
        if uri.startswith(prefix):
            return scheme + uri[len(prefix):]
    return uri


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The agent's options from its command line (registrator's single-dash spellings too)."""
    parser = argparse.ArgumentParser(prog="autoproxy-agent registrator", description=DESCRIPTION, allow_abbrev=False)
    parser.add_argument("registry_uri", nargs="?", help="registrator-style consul://host:port or consul-tls://...")
    parser.add_argument("--consul", default=env_default("CONSUL_HTTP_ADDR", "http://127.0.0.1:8500"),
                        help="Consul HTTP API URL (the registry_uri argument wins)")
    parser.add_argument("--consul-token", default=os.environ.get("CONSUL_HTTP_TOKEN"))
    parser.add_argument("--consul-cacert", default=env_default("CONSUL_CACERT", None), help="CA file for https")
    parser.add_argument("--consul-client-cert", default=env_default("CONSUL_CLIENT_CERT", None))
    parser.add_argument("--consul-client-key", default=env_default("CONSUL_CLIENT_KEY", None))
    _flag(parser, "--internal", "-internal", action="store_true",
          help="register the container's IP and exposed port (else host IP and published port)")
    _flag(parser, "--ip", "-ip", dest="host_ip", help="host IP to register for published ports")
    parser.add_argument("--network", help="network whose IP is registered (label autoproxy.network wins)")
    _flag(parser, "--explicit", "-explicit", action="store_true", help="only register containers with SERVICE_NAME")
    _flag(parser, "--use-ip-from-label", "-useIpFromLabel", dest="ip_from_label",
          help="take the service IP from this label")
    _flag(parser, "--tags", "-tags", default="", help="comma list of tags added to every service")
    parser.add_argument("--hostname", default=socket.gethostname(), help="host name used in service IDs")
    _flag(parser, "--deregister", "-deregister", choices=("always", "on-success"), default="always")
    _flag(parser, "--cleanup", "-cleanup", action="store_true",
          help="also remove this host's registrator-style IDs that no live container backs")
    _flag(parser, "--resync", "-resync", type=float, default=10.0,
          help="seconds between full reconciliations (0: only at start and after faults)")
    _flag(parser, "--retry-attempts", "-retry-attempts", type=int, default=-1,
          help="Consul attempts at start before exiting (-1: forever)")
    _flag(parser, "--retry-interval", "-retry-interval", type=int, default=2000,
          help="milliseconds between those attempts")
    _flag(parser, "--ttl", "-ttl", type=int, default=0, help="accepted for registrator compatibility; no effect")
    _flag(parser, "--ttl-refresh", "-ttl-refresh", type=int, default=0, help="as --ttl")
    parser.add_argument("--filter-label", help="only manage containers with this label (KEY or KEY=VALUE)")
    parser.add_argument("--no-script-checks", dest="script_checks", action="store_false",
                        help="refuse SERVICE_CHECK_SCRIPT (Consul would run a container-given command)")
    parser.add_argument("--health-ttl", default="24h", help="TTL of the check that mirrors Docker's HEALTHCHECK")
    parser.add_argument("--probe-interval", type=float, default=0.1,
                        help="seconds between fast probes of a new service's check (0: leave it to Consul)")
    parser.add_argument("--probe-timeout", type=float, default=60.0, help="seconds to keep probing a new service")
    parser.add_argument("--no-drain", dest="drain", action="store_false",
                        help="do not deregister on the kill that ends a container (wait for die)")
    parser.add_argument("--drain-grace", type=float, default=60.0,
                        help="seconds a drained container that still runs stays out of Consul")
    args = parser.parse_args(argv)
    if args.registry_uri:
        args.consul = _consul_url(args.registry_uri)
    if args.ttl or args.ttl_refresh:
        log.warning("-ttl/-ttl-refresh have no effect with Consul (as in registrator); use SERVICE_CHECK_TTL")
    return args


def label_matches(labels: Mapping[str, str] | None, selector: str | None) -> bool:
    """Whether labels match a --filter-label selector (KEY or KEY=VALUE; none matches everything)."""
    if not selector:
        return True
    key, sep, value = selector.partition("=")
    labels = labels or {}
    return key in labels and (not sep or labels[key] == value)
