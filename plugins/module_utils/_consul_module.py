# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every module of the ``consul`` action group shares on the Ansible side.

PRIVATE to the collection. The connection options (documented once in
doc_fragments/_consul.py), reading Consul's own environment variables, and one way of turning
a failed Consul request into a message that says what to fix.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.basic import env_fallback

from ansible_collections.autoproxy.stack.plugins.module_utils._consul import DEFAULT_URL, ConsulClient, ConsulError

# The connection options, as doc_fragments/_consul.py documents them.
CONNECTION_ARGSPEC: dict[str, dict[str, Any]] = {
    "url": {"type": "str", "default": DEFAULT_URL, "fallback": (env_fallback, ["CONSUL_HTTP_ADDR"])},
    "token": {"type": "str", "no_log": True, "fallback": (env_fallback, ["CONSUL_HTTP_TOKEN"])},
    "validate_certs": {"type": "bool", "default": True},
    "ca_path": {"type": "path"},
    "timeout": {"type": "float", "default": 10.0},
}

_HINTS = {
    400: "Consul refused the request as invalid; fix the option its message names",
    401: "the token is not valid for this Consul (token, or CONSUL_HTTP_TOKEN)",
    403: "the token lacks the ACL permission for this (token, or CONSUL_HTTP_TOKEN)",
    404: "Consul does not know this object or endpoint",
    500: "Consul failed internally; its agent log says why",
}
_UNREACHABLE_HINT = (
    "check that a Consul agent answers at url (or CONSUL_HTTP_ADDR), "
    "and that validate_certs/ca_path fit its certificate"
)


def consul_argument_spec(**options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The connection options, url and token also read from CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN, plus ``options``."""
    spec = {name: dict(option) for name, option in CONNECTION_ARGSPEC.items()}
    spec.update(options)
    return spec


def api_url(value: str) -> str:
    """CONSUL_HTTP_ADDR may be ``host:port`` without a scheme, as Consul's CLI allows."""
    return value if "://" in value else "http://" + value


def consul_client(params: dict[str, Any]) -> ConsulClient:
    return ConsulClient(api_url(params["url"]), token=params.get("token"), timeout=params["timeout"],
                        ca_path=params.get("ca_path"), validate_certs=params["validate_certs"])


def consul_failure(exc: ConsulError, doing: str) -> str:
    """The fail_json message for a ConsulError raised while ``doing`` something."""
    hint = _UNREACHABLE_HINT if exc.status is None else _HINTS.get(exc.status, "")
    return f"{doing} failed: {exc}" + (f". Hint: {hint}." if hint else "")


def consul_status(exc: ConsulError) -> dict[str, Any]:
    """The extra fail_json keys for a ConsulError: the HTTP status, when Consul answered."""
    return {} if exc.status is None else {"status": exc.status}
