# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Who holds a service ID that several running containers ask for: the pure rule.

Consul keeps one service per ID, so two containers that both write ``SERVICE_ID=shop-1`` (a copied
compose file) would overwrite each other, and removing either one would remove the other's route.
The rule never moves an ID from one running container to another, so no route changes its address
under the proxy:

* The container registered under the ID keeps it while it runs (not paused, not draining).
* A free ID goes to the claimant that started first (Docker's ``State.StartedAt``; equal times: the
  lower container ID).
* Every other claimant is registered under ``<ID>:<container name>``, so it is routed too, and keeps
  that ID until it stops; a warning names both containers.
* When the holder stops, its registration goes as any other, and the others stay as they are: the
  ID is free for the next container that asks for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# Docker writes StartedAt as RFC 3339 with up to 9 fraction digits and trailing zeros cut
# ("...:52.1234Z"), so the text is not sortable as it is.
_STARTED_AT_RE = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?")


def claim_order(started_at: Any, container_id: Any) -> tuple[str, str, str]:
    """Sort key of a claimant: start time (``State.StartedAt`` text) then container ID.

    A missing or unreadable start time sorts last, so a container the engine reports oddly never
    takes an ID from one that reads well.
    """
    match = _STARTED_AT_RE.match(started_at) if isinstance(started_at, str) else None
    if match is None or match.group(1).startswith("0001-"):
        start, fraction = "9999-12-31T23:59:59", "999999999"
    else:
        start, fraction = match.group(1), (match.group(2) or "").ljust(9, "0")
    return start, fraction, container_id if isinstance(container_id, str) else ""


# How a claimant stands towards an ID, from what Consul holds for it.
HELD = "held"              # registered under the ID
ON_FALLBACK = "fallback"   # registered under its fallback ID
NEW = "new"                # neither (yet)


def claim_standing(service_id: str, container: str, registered_ids: Iterable[str]) -> str:
    """HELD, ON_FALLBACK or NEW: what ``registered_ids`` (the container's IDs in Consul) say."""
    registered = set(registered_ids)
    if service_id in registered:
        return HELD
    if fallback_service_id(service_id, container) in registered:
        return ON_FALLBACK
    return NEW


def id_holder(claimants: Mapping[str, tuple[str, tuple[str, str, str]]]) -> str | None:
    """The container that holds an ID, or None when only claimants on their fallback ID are left.

    ``claimants``: container name -> (standing, claim order). A container registered under the ID
    keeps it; otherwise the first started of the new claimants gets it.
    """
    for standing in (HELD, NEW):
        candidates = [name for name, (their_standing, _order) in claimants.items() if their_standing == standing]
        if candidates:
            return min(candidates, key=lambda name: (claimants[name][1], name))
    return None


def fallback_service_id(service_id: str, container: str) -> str:
    """The ID a claimant that does not hold ``service_id`` is registered under."""
    return f"{service_id}:{container}"


def assign_service_ids(registrations: list[dict[str, Any]], container: str,
                       holders: Mapping[str, str | None]) -> tuple[list[dict[str, Any]], list[str]]:
    """The container's registrations with the IDs it does not hold replaced by its fallback IDs.

    ``registrations``: bodies from ``container_services`` (no digest yet, since the ID is part of
    it); ``holders``: service ID -> the container that holds it (``id_holder``; absent: the
    container is the only claimant). Returns ``(registrations, warnings)``, one warning per ID held
    by another container, naming both containers. The input is not changed.
    """
    result = []
    warnings = []
    for registration in registrations:
        holder = holders.get(registration["ID"], container)
        if holder == container:
            result.append(registration)
            continue
        fallback = fallback_service_id(registration["ID"], container)
        if holder is not None:
            warnings.append(f"container '{container}': service ID '{registration['ID']}' is also asked for by "
                            f"container '{holder}', which holds it; '{container}' is registered as "
                            f"'{fallback}' for as long as it runs")
        result.append(dict(registration, ID=fallback))
    return result, warnings
