# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from typing import Any, Callable

from ansible.errors import AnsibleFilterError

from ansible_collections.autoproxy.stack.plugins.module_utils._tags import parse_tags
from ansible_collections.autoproxy.stack.plugins.module_utils._text import split_escaped
from ansible_collections.autoproxy.stack.plugins.plugin_utils._filter_input import describe_kind

DOCUMENTATION = r"""
name: service_tags
short_description: Sort a Consul service's tags into routing tags, aliases, options and metadata
version_added: 0.1.0
description:
  - Reads a service instance's tags the way the autoproxy proxy does (routing rules 1, 4, 5 and 7 of docs/RULES.md).
  - A host name fragment is a routing tag; C(server_alias=X) and C(server_aliases=X,Y) add aliases; C(sticky_session),
    C(weight=N), C(balance=ALGO) and C(maxconn=N) are options; any other C(key=value) is metadata.
  - A tag that fits none of these is dropped with a warning naming the service and the tag, as the proxy drops it.
options:
  _input:
    description:
      - The tags, as a list, or as a registrator C(SERVICE_TAGS) value (a comma-separated string where C(\,) is a
        literal comma).
    type: raw
    required: true
  service:
    description:
      - Service name used in the warnings.
    type: str
    default: ""
seealso:
  - plugin: autoproxy.stack.service_hosts
    plugin_type: filter
  - plugin: autoproxy.stack.haproxy_backend_name
    plugin_type: filter
author:
  - autoproxy.stack contributors (@autoproxy-stack)
"""

EXAMPLES = r"""
- name: Read a tag list
  ansible.builtin.debug:
    msg: "{{ ['hello', 'world.dev', 'sticky_session', 'weight=5', 'ip=1.2.3.4'] | autoproxy.stack.service_tags }}"
  # routing: [hello, world.dev], options: {sticky_session: true, weight: 5}, metadata: {ip: 1.2.3.4}

- name: Read a SERVICE_TAGS value and fail on tags the proxy would drop
  vars:
    service_tags_value: hello,server_aliases=hello.example.com\,hi.example.com,weight=500
    parsed: "{{ service_tags_value | autoproxy.stack.service_tags(service='www') }}"
  ansible.builtin.assert:
    that:
      - parsed.aliases == ['hello.example.com', 'hi.example.com']
      - parsed.warnings | length == 1
    fail_msg: "{{ parsed.warnings }}"
"""

RETURN = r"""
_value:
  description: The tags sorted by meaning.
  type: dict
  contains:
    routing:
      description: Routing tags, lower-cased, in order; each gives host C(<service>.<tag>).
      type: list
      elements: str
    aliases:
      description: Extra host names from C(server_alias) and C(server_aliases), lower-cased.
      type: list
      elements: str
    options:
      description: Backend and server options (C(sticky_session), C(weight), C(balance), C(maxconn)).
      type: dict
    metadata:
      description: Other C(key=value) tags; kept, never rendered into the proxy config.
      type: dict
    warnings:
      description: One message per dropped tag, naming the service and the tag.
      type: list
      elements: str
"""


FQCN = "autoproxy.stack.service_tags"


def service_tags(tags: Any, service: Any = "") -> dict[str, Any]:
    if isinstance(tags, str):
        tags = split_escaped(tags)
    elif not isinstance(tags, (list, tuple)):
        raise AnsibleFilterError(f"{FQCN}: the input must be a list of tags or a comma-separated string, "
                                 f"not {describe_kind(tags)}")
    if not isinstance(service, str):
        raise AnsibleFilterError(f"{FQCN}: service must be a string, not {describe_kind(service)}")
    parsed = parse_tags(tags, service=service)
    return {
        "routing": list(parsed.routing),
        "aliases": list(parsed.aliases),
        "options": dict(parsed.options),
        "metadata": dict(parsed.metadata),
        "warnings": list(parsed.warnings),
    }


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"service_tags": service_tags}
