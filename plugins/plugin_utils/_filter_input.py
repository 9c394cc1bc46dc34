# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the filter plugins share when they describe bad input."""

from __future__ import annotations

from collections.abc import Mapping


def describe_kind(value: object) -> str:
    """A person's word for the type of a value, for error messages."""
    # Ansible 2.19 wraps templated values in private classes; name what the user wrote instead.
    if isinstance(value, Mapping):
        return "a mapping"
    return "nothing" if value is None else type(value).__name__.lstrip("_")
