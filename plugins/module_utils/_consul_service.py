# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One service registration on a Consul agent: what was asked against what the agent holds.

PRIVATE to the collection. Pure functions over plain dicts in the module's own shape
(``id``, ``name``, ``address``, ``port``, ``tags``, ``meta``, ``checks``), so the comparison is
testable without an agent and the field mapping to Consul's API is written once, in tables.

Consul (1.8 at least) does not return a check's definition (URL, interval, ...) from its API,
so a registration made here carries the definition in the check's ``Notes`` behind a marker.
A check registered by someone else has no readable definition and counts as different once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.autoproxy.stack.plugins.module_utils._durations import parse_duration_ns

CHECK_TYPES = ("http", "tcp", "ttl")
CHECK_DURATIONS = ("interval", "timeout", "deregister_critical_service_after")
# The definition keys stored in Notes and compared; name and status are compared/used apart.
CHECK_DEFINITION_KEYS = CHECK_TYPES + CHECK_DURATIONS
SERVICE_KEYS = ("id", "name", "address", "port", "tags", "meta")
NOTES_MARKER = "autoproxy.stack.consul_service definition: "

# module key -> Consul API key, for the registration body.
_SERVICE_API = {"id": "ID", "name": "Name", "address": "Address", "port": "Port", "tags": "Tags", "meta": "Meta"}
_CHECK_API = {
    "id": "CheckID",
    "name": "Name",
    "http": "HTTP",
    "tcp": "TCP",
    "ttl": "TTL",
    "interval": "Interval",
    "timeout": "Timeout",
    "deregister_critical_service_after": "DeregisterCriticalServiceAfter",
    "status": "Status",
}
# Consul refuses an interval or TTL that is not above zero. A zero timeout or deregister delay
# is accepted (Consul's default timeout, never deregister); a negative one is refused here as
# a mistake, although Consul would read it like zero.
_POSITIVE_DURATIONS = ("interval", "ttl")


class RegistrationError(ValueError):
    """The options cannot make a valid registration; the message names the option."""


def _given(mapping: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {key: mapping[key] for key in keys if mapping.get(key) is not None}


def _meta(meta: Mapping[Any, Any] | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in (meta or {}).items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise RegistrationError(f"meta {key!r}: values must be strings (or numbers, which become strings)")
        result[str(key)] = str(value)
    return result


def check_id(service_id: str, index: int, count: int) -> str:
    """Consul's own default check ids: ``service:<id>`` for one check, ``service:<id>:<n>`` for several."""
    return f"service:{service_id}" if count == 1 else f"service:{service_id}:{index + 1}"


def _desired_check(raw: Mapping[str, Any], service_id: str, index: int, count: int) -> dict[str, Any]:
    where = f"checks[{index}]"
    kinds = [kind for kind in CHECK_TYPES if raw.get(kind) is not None]
    if len(kinds) != 1:
        raise RegistrationError(f"{where}: give exactly one of http, tcp or ttl")
    check = _given(raw, ("id", "name", "status") + CHECK_DEFINITION_KEYS)
    check.setdefault("id", check_id(service_id, index, count))
    for key in CHECK_DURATIONS + (("ttl",) if kinds[0] == "ttl" else ()):
        if key not in check:
            continue
        nanoseconds = parse_duration_ns(check[key])
        if nanoseconds is None:
            raise RegistrationError(f"{where}.{key}: {check[key]!r} is not a duration such as 10s, 500ms or 1m30s")
        if nanoseconds < 0 or (nanoseconds == 0 and key in _POSITIVE_DURATIONS):
            above = "above zero" if key in _POSITIVE_DURATIONS else "zero or more"
            raise RegistrationError(f"{where}.{key}: {check[key]!r} must be {above}")
    if kinds[0] != "ttl" and "interval" not in check:
        raise RegistrationError(f"{where}: an {kinds[0]} check needs an interval")
    if kinds[0] == "ttl" and ("interval" in check or "timeout" in check):
        raise RegistrationError(f"{where}: a ttl check takes no interval or timeout")
    return check


def desired_registration(params: Mapping[str, Any]) -> dict[str, Any]:
    """The registration asked for, module-shaped, holding only the options that were given.

    ``params`` are the module's options (None = not given). Raises RegistrationError.
    """
    desired = _given(params, SERVICE_KEYS)
    desired.setdefault("id", desired.get("name"))
    if "meta" in desired:
        desired["meta"] = _meta(desired["meta"])
    if "tags" in desired:
        desired["tags"] = [str(tag) for tag in desired["tags"]]
    if params.get("checks") is not None:
        checks = params["checks"]
        desired["checks"] = [_desired_check(raw, desired["id"], i, len(checks)) for i, raw in enumerate(checks)]
        ids = [check["id"] for check in desired["checks"]]
        duplicates = sorted({value for value in ids if ids.count(value) > 1})
        if duplicates:
            raise RegistrationError(f"checks: duplicate check ids {', '.join(duplicates)}")
    return desired


def check_notes(check: Mapping[str, Any]) -> str:
    """The Notes that carry a check's definition, so a later run can compare it."""
    definition = {key: check[key] for key in CHECK_DEFINITION_KEYS if key in check}
    return NOTES_MARKER + json.dumps(definition, sort_keys=True, separators=(",", ":"))


def _definition_from_notes(notes: Any) -> dict[str, str] | None:
    if not isinstance(notes, str) or not notes.startswith(NOTES_MARKER):
        return None
    try:
        definition = json.loads(notes[len(NOTES_MARKER):])
    except ValueError:
        return None
    if not isinstance(definition, dict):
        return None
    return {key: definition[key] for key in CHECK_DEFINITION_KEYS if isinstance(definition.get(key), str)}


def _definition_from_api(agent_check: Mapping[str, Any]) -> dict[str, Any] | None:
    # Newer Consul versions fill Definition; 1.8 leaves it empty.
    api = agent_check.get("Definition") or {}
    definition = {key: api[_CHECK_API[key]] for key in CHECK_DEFINITION_KEYS if api.get(_CHECK_API[key])}
    kind = agent_check.get("Type")
    return definition if kind in definition else None


def current_check(agent_check: Mapping[str, Any]) -> dict[str, Any]:
    """One entry of /v1/agent/checks, module-shaped; ``definition_known`` says if it could be read."""
    check: dict[str, Any] = {"id": agent_check.get("CheckID", ""), "name": agent_check.get("Name", ""),
                             "type": agent_check.get("Type", ""), "status": agent_check.get("Status", "")}
    definition = _definition_from_notes(agent_check.get("Notes")) or _definition_from_api(agent_check)
    check["definition_known"] = definition is not None
    check.update(definition or {})
    return check


def current_registration(
    agent_service: Mapping[str, Any] | None, agent_checks: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, Any] | None:
    """What the agent holds for one service id, module-shaped; None when it has no such service.

    ``agent_service`` is /v1/agent/service/<id>, ``agent_checks`` is /v1/agent/checks.
    """
    if agent_service is None:
        return None
    service_id = agent_service.get("ID", "")
    checks = [check for check in (agent_checks or {}).values() if check.get("ServiceID") == service_id]
    return {
        "id": service_id,
        "name": agent_service.get("Service", ""),
        "address": agent_service.get("Address", ""),
        "port": agent_service.get("Port", 0),
        "tags": list(agent_service.get("Tags") or []),
        "meta": dict(agent_service.get("Meta") or {}),
        "checks": [current_check(check) for check in sorted(checks, key=lambda item: item.get("CheckID", ""))],
        "weights": agent_service.get("Weights"),
        "enable_tag_override": agent_service.get("EnableTagOverride", False),
    }


def _check_kind(check: Mapping[str, Any]) -> Any:
    return next((kind for kind in CHECK_TYPES if kind in check), check.get("type"))


def _same_value(key: str, held: Any, wanted: Any) -> bool:
    if key in CHECK_DURATIONS or key == "ttl":
        # By value ("1m0s" as Consul writes it equals "60s"); a value that is no duration by text.
        held_ns, wanted_ns = parse_duration_ns(held), parse_duration_ns(wanted)
        if held_ns is not None and wanted_ns is not None:
            return held_ns == wanted_ns
    return held == wanted


def check_differences(held: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> list[str]:
    """Keys of one wanted check that differ from the held one (only the keys given)."""
    prefix = f"checks[{wanted['id']}]"
    if held is None:
        return [f"{prefix} (new)"]
    if not held["definition_known"]:
        return [f"{prefix} (definition not readable from Consul)"]
    if _check_kind(held) != _check_kind(wanted):
        return [f"{prefix}.type"]
    keys = [key for key in ("name",) + CHECK_DEFINITION_KEYS if key in wanted]
    return [f"{prefix}.{key}" for key in keys if not _same_value(key, held.get(key), wanted[key])]


def differences(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> list[str]:
    """Dotted names of the asked-for keys whose value differs from what the agent holds.

    A service the agent does not hold differs in everything asked for. When ``checks`` is
    given, the agent's other checks of this service differ too (they would be removed).
    """
    if current is None:
        return [key for key in SERVICE_KEYS + ("checks",) if key in desired]
    found = [key for key in SERVICE_KEYS if key in desired and current.get(key) != desired[key]]
    if "checks" in desired:
        held = {check["id"]: check for check in current["checks"]}
        for check in desired["checks"]:
            found += check_differences(held.get(check["id"]), check)
        wanted_ids = {check["id"] for check in desired["checks"]}
        found += [f"checks[{check_id}] (removed)" for check_id in sorted(held) if check_id not in wanted_ids]
    return found


def _merged_check(held: Mapping[str, Any] | None, wanted: Mapping[str, Any], service_name: str) -> dict[str, Any]:
    if held is None or not held["definition_known"] or _check_kind(held) != _check_kind(wanted):
        # Consul's own default name, set here so that check mode predicts it.
        return dict({"name": f"Service '{service_name}' check"}, **wanted)
    # Keys not asked for keep the agent's value, so a change touches only what was asked.
    merged = {key: held[key] for key in CHECK_DURATIONS if key in held}
    merged.update({"name": held["name"]} if held.get("name") else {})
    merged.update(wanted)
    return merged


def merged_registration(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> dict[str, Any]:
    """The full registration to send: the agent's, with the asked-for keys replaced."""
    if current is None:
        merged = {key: desired[key] for key in SERVICE_KEYS if key in desired}
        if "checks" in desired:
            merged["checks"] = [_merged_check(None, check, merged.get("name", "")) for check in desired["checks"]]
        return merged
    merged = {key: current[key] for key in SERVICE_KEYS}
    merged.update({key: desired[key] for key in SERVICE_KEYS if key in desired})
    for key in ("weights", "enable_tag_override"):
        if current.get(key) is not None:
            merged[key] = current[key]
    if "checks" in desired:
        held = {check["id"]: check for check in current["checks"]}
        merged["checks"] = [_merged_check(held.get(check["id"]), check, merged["name"]) for check in desired["checks"]]
    else:
        # Not asked for: the agent keeps them (they are not sent), and the diff shows them unchanged.
        merged["checks"] = current["checks"]
    return merged


def registration_body(merged: Mapping[str, Any], send_checks: bool) -> dict[str, Any]:
    """The JSON body for PUT /v1/agent/service/register.

    ``send_checks`` false leaves the agent's checks as they are (register without
    ``replace-existing-checks``); true sends the merged checks and replaces all others.
    """
    body = {_SERVICE_API[key]: merged[key] for key in SERVICE_KEYS if key in merged and merged[key] != ""}
    if merged.get("weights"):
        body["Weights"] = merged["weights"]
    if merged.get("enable_tag_override"):
        body["EnableTagOverride"] = True
    if send_checks:
        body["Checks"] = [_check_body(check) for check in merged.get("checks", [])]
    return body


def _check_body(check: Mapping[str, Any]) -> dict[str, Any]:
    body = {_CHECK_API[key]: check[key] for key in _CHECK_API if key in check}
    body["Notes"] = check_notes(check)
    return body


def view(registration: Mapping[str, Any] | None) -> dict[str, Any]:
    """A registration as shown in diffs and results: module keys, no bookkeeping."""
    if registration is None:
        return {}
    shown = {key: registration[key] for key in SERVICE_KEYS if key in registration}
    if "checks" in registration:
        shown["checks"] = [
            {key: check[key] for key in ("id", "name") + CHECK_DEFINITION_KEYS if key in check}
            for check in registration["checks"]
        ]
    return shown
