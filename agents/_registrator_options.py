# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registrator agent's command line, built from its settings (_registrator_settings): our flags and
gliderlabs/registrator's single-dash ones."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping

from ansible_collections.autoproxy.stack.plugins.module_utils._agent_settings import build_parser
from ansible_collections.autoproxy.stack.plugins.module_utils._registrator_settings import REGISTRATOR_SETTINGS

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


def _consul_url(uri: str) -> str:
    """registrator's registry URI (consul://host:port, consul-tls://host:port) or a plain URL."""
    for prefix, scheme in (("consul-tls://", "https://"), ("consul://", "http://")):
        if uri.startswith(prefix):
            return scheme + uri[len(prefix):]
    return uri


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The agent's options from its command line (registrator's single-dash spellings too)."""
    parser = build_parser("autoproxy-agent registrator", DESCRIPTION, REGISTRATOR_SETTINGS, allow_abbrev=False)
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
