# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How the registrator agent keeps Consul equal to the running containers: the pure rules.

* Every registration carries the owner mark, the container name and a digest of its own definition
  in Meta, so a reconciliation compares digests and never re-registers an unchanged service
  (re-registration resets check state and wakes every watcher).
* Docker's HEALTHCHECK becomes a TTL check whose status follows Docker's health status.
* ``-deregister on-success`` keeps a crashed container registered, as registrator does.
* A ``kill`` with a signal that ends the container drains it (deregisters) before ``die``.
* ``-cleanup`` also removes services that match registrator's ID pattern for this host and that
  no live container backs, even without an owner mark (left by gliderlabs/registrator).
* The declared check of a new service is probed at a fast pace until it first passes; these
  functions say what to probe and how Consul would judge the answer.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import signal as _signal
from collections.abc import Container, Iterable, Mapping
from typing import Any, TypeVar

from ansible_collections.autoproxy.stack.plugins.module_utils._addresses import split_host_port
from ansible_collections.autoproxy.stack.plugins.module_utils._containers import CONTAINER_META, OWNER_META
from ansible_collections.autoproxy.stack.plugins.module_utils._durations import parse_duration

DIGEST_META = "autoproxy_digest"
HEALTH_CHECK_PREFIX = "autoproxy-docker-health:"
HEALTH_CHECK_NAME = "Docker HEALTHCHECK"

# registrator's cleanup pattern: <hostname>:<container name>:<port>[:udp]
_REGISTRATOR_ID_RE = re.compile(r"^(.+?):([a-zA-Z0-9][a-zA-Z0-9_.-]+):[0-9]+(?::udp)?$")
_SIGNALED_BIT = 128
# Signals after which a container is expected to end, so it is drained before it does.
_ENDING_SIGNALS = frozenset({_signal.SIGTERM, _signal.SIGKILL, _signal.SIGINT, _signal.SIGQUIT})
_STATUS_WORDS = {"healthy": "passing", "unhealthy": "critical", "starting": "critical"}
_HEALTH_IN_STATUS_RE = re.compile(r"\((healthy|unhealthy|health: starting)\)")
# A registration, as the caller holds it (plan_changes hands back the same objects).
_Registration = TypeVar("_Registration", bound=Mapping[str, Any])


# --------------------------------------------------------------------------------------------
# digests: change detection without re-registering


def registration_digest(registration: Mapping[str, Any]) -> str:
    """A short stable hash of a registration's definition (Meta digest and check Status excluded)."""
    body = copy.deepcopy(registration)
    body.get("Meta", {}).pop(DIGEST_META, None)
    for check in _checks(body):
        # The status we set after a probe is state, not definition.
        check.pop("Status", None)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _checks(registration: Mapping[str, Any]) -> list[dict[str, Any]]:
    checks = list(registration.get("Checks") or [])
    if registration.get("Check"):
        checks.append(registration["Check"])
    return checks


def with_digest(registration: dict[str, Any]) -> dict[str, Any]:
    """A copy of the registration with its digest in Meta."""
    result = copy.deepcopy(registration)
    result.setdefault("Meta", {})[DIGEST_META] = registration_digest(registration)
    return result


def owned_services(agent_services: Mapping[str, Any] | None, owner: str) -> dict[str, dict[str, Any]]:
    """The entries of ``GET /v1/agent/services`` that carry this agent's owner mark."""
    return {sid: svc for sid, svc in (agent_services or {}).items()
            if isinstance(svc, dict) and (svc.get("Meta") or {}).get(OWNER_META) == owner}


def services_by_container(services: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Mapping[str, Any]]]:
    """Service entries grouped by the container name in their Meta."""
    grouped: dict[str, dict[str, Mapping[str, Any]]] = {}
    for sid, svc in services.items():
        grouped.setdefault((svc.get("Meta") or {}).get(CONTAINER_META, ""), {})[sid] = svc
    return grouped


def plan_changes(
    desired: Iterable[_Registration], have: Mapping[str, Mapping[str, Any]]
) -> tuple[list[_Registration], list[str]]:
    """What to do so Consul holds exactly ``desired`` for one container.

    ``desired``: registrations with digests (``with_digest``); ``have``: service ID -> entry of
    ``/v1/agent/services``. Returns ``(to_register, to_deregister_ids)``; an unchanged service is in neither.
    """
    to_register = []
    wanted_ids = set()
    for registration in desired:
        wanted_ids.add(registration["ID"])
        current = have.get(registration["ID"])
        if current is None or (current.get("Meta") or {}).get(DIGEST_META) != registration["Meta"][DIGEST_META]:
            to_register.append(registration)
    return to_register, sorted(set(have) - wanted_ids)


def digests_match(desired: Iterable[Mapping[str, Any]], have: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when ``have`` already holds exactly ``desired`` (the cheap test of a periodic pass)."""
    to_register, to_deregister = plan_changes(desired, have)
    return not to_register and not to_deregister


# --------------------------------------------------------------------------------------------
# Docker HEALTHCHECK as a Consul TTL check


def has_healthcheck(inspect: Mapping[str, Any] | None) -> bool:
    test = (((inspect or {}).get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


def docker_health_status(inspect: Mapping[str, Any] | None) -> str | None:
    """'starting', 'healthy' or 'unhealthy', or None when the container has no HEALTHCHECK."""
    if not has_healthcheck(inspect):
        return None
    return (((inspect or {}).get("State") or {}).get("Health") or {}).get("Status") or "starting"


def health_from_list_status(status_text: str | None) -> str | None:
    """The health word in ``docker ps``'s Status ('Up 5 minutes (healthy)'), or None."""
    match = _HEALTH_IN_STATUS_RE.search(status_text or "")
    if not match:
        return None
    return "starting" if match.group(1) == "health: starting" else match.group(1)


def consul_status(docker_status: str) -> str:
    """Only a healthy container is routed; 'starting' is not ready yet."""
    return _STATUS_WORDS.get(docker_status, "critical")


def health_check_id(service_id: str) -> str:
    return HEALTH_CHECK_PREFIX + service_id


def add_health_check(registration: dict[str, Any], ttl: str, status: str) -> dict[str, Any]:
    """A copy of the registration with a TTL check that mirrors Docker's health status."""
    result = copy.deepcopy(registration)
    checks = _checks(result)
    result.pop("Check", None)
    checks.append({"CheckID": health_check_id(result["ID"]), "Name": HEALTH_CHECK_NAME, "TTL": ttl,
                   "Status": status})
    result["Checks"] = checks
    return result


# --------------------------------------------------------------------------------------------
# container life cycle


def deregister_on_exit(policy: str, state: Mapping[str, Any] | None) -> bool:
    """Whether a container that is no longer running loses its registrations.

    ``state`` is its inspect ``State`` or None when the container is gone. registrator's rule:
    ``always``; or ``on-success`` and the container is gone, exited 0, or ended by a signal.
    """
    if policy == "always" or state is None:
        return True
    if state.get("Running") and not state.get("Paused"):
        return False
    code = state.get("ExitCode") or 0
    return code == 0 or code & _SIGNALED_BIT == _SIGNALED_BIT


# What a container's reconciliation does, from its state (container_phase).
ROUTE = "route"        # running: Consul holds what its keys ask for
DRAINED = "drained"    # running but drained before it stops: nothing in Consul, drain state kept
KEEP = "keep"          # exited with a failure under --deregister on-success: left as it is
REMOVE = "remove"      # stopped or gone: nothing in Consul, its state forgotten


def container_phase(state: Mapping[str, Any] | None, draining: bool, have: Mapping[str, Any] | None,
                    policy: str) -> str:
    """ROUTE, DRAINED, KEEP or REMOVE for one container.

    ``state``: its inspect ``State`` (None when the container is gone); ``draining``: a drain
    still holds it out; ``have``: its services in Consul; ``policy``: ``always`` or ``on-success``.
    """
    if state and state.get("Running") and not state.get("Paused"):
        return DRAINED if draining else ROUTE
    if have and not deregister_on_exit(policy, state):
        return KEEP
    return REMOVE


def _signal_number(value: object) -> int | None:
    value = str(value or "").strip().upper()
    if value.isdigit():
        return int(value)
    name = value if value.startswith("SIG") else "SIG" + value
    member = getattr(_signal.Signals, name, None) if name.isidentifier() else None
    return int(member) if member is not None else None


def drains_on_kill(signal_value: object, stop_signal: object = None) -> bool:
    """True when a ``kill`` event's signal will end the container (so it must leave the proxy now).

    A reload signal such as SIGHUP or SIGUSR1 does not drain; the container's own STOPSIGNAL does.
    """
    number = _signal_number(signal_value)
    if number is None:
        return False
    return number in _ENDING_SIGNALS or (stop_signal is not None and number == _signal_number(stop_signal))


def registrator_cleanup_ids(
    agent_services: Mapping[str, Any] | None, hostname: str, live_container_names: Container[str], owner: str
) -> list[str]:
    """IDs that registrator's ``-cleanup`` would remove: this host's pattern, no live container, not ours."""
    stale: list[str] = []
    for sid, svc in (agent_services or {}).items():
        if (svc.get("Meta") or {}).get(OWNER_META) == owner:
            continue  # ours are reconciled by container name, not by ID pattern
        match = _REGISTRATOR_ID_RE.match(sid)
        if match and match.group(1) == hostname and match.group(2) not in live_container_names:
            stale.append(sid)
    return sorted(stale)


# --------------------------------------------------------------------------------------------
# fast first probe


def probe_target(registration: dict[str, Any], cap: float = 1.0) -> dict[str, Any] | None:
    """What to probe before the service is routed, or None when its check cannot be probed here.

    Returns ``{"kind": "http", "url", "method", "tls_skip_verify", "timeout"}`` or
    ``{"kind": "tcp", "host", "port", "timeout"}``. A check with an initial status already
    decides its start, and script/TTL/gRPC checks are left to Consul.
    """
    check = registration.get("Check") or next(iter(registration.get("Checks") or []), None)
    if not check or check.get("Status"):
        return None
    # No timeout, or none above zero, means Consul's default (10s): probe with the cap then.
    seconds = parse_duration(check.get("Timeout"))
    timeout = min(cap, seconds) if seconds is not None and seconds > 0 else cap
    if check.get("HTTP"):
        return {"kind": "http", "url": check["HTTP"], "method": check.get("Method") or "GET",
                "tls_skip_verify": bool(check.get("TLSSkipVerify")), "timeout": timeout}
    target = split_host_port(check["TCP"]) if check.get("TCP") else None
    if target is not None:
        return {"kind": "tcp", "host": target[0], "port": target[1], "timeout": timeout}
    return None


def http_status_passes(status: int) -> bool:
    """Consul's rule for HTTP checks: 2xx passes (429 is only a warning, which is not routed)."""
    return 200 <= status < 300


def mark_passing(registration: dict[str, Any]) -> dict[str, Any]:
    """A copy whose first (declared) check starts as passing, after the probe saw it answer."""
    result = copy.deepcopy(registration)
    if result.get("Check"):
        result["Check"]["Status"] = "passing"
    elif result.get("Checks"):
        result["Checks"][0]["Status"] = "passing"
    return result
