# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from typing import Any, Callable

from ansible.errors import AnsibleFilterError

from ansible_collections.autoproxy.stack.plugins.module_utils._tags import service_hosts as hosts_of
from ansible_collections.autoproxy.stack.plugins.module_utils._tags import valid_service_name
from ansible_collections.autoproxy.stack.plugins.module_utils._text import split_escaped
from ansible_collections.autoproxy.stack.plugins.plugin_utils._filter_input import describe_kind

DOCUMENTATION = r"""
name: service_hosts
short_description: The host names a Consul service instance is routed under
version_added: 0.1.0
description:
  - Gives every host name the autoproxy proxy routes to an instance of a service with these tags (routing rules
    1 to 4 of the collection's docs/RULES.md), in the proxy's order.
  - A routing tag T gives C(<service>.T); no routing tag gives the service name with C(_) turned into C(.); aliases
    are added; then each host is also repeated under every domain.
  - Tags the proxy would drop are ignored here too; see P(autoproxy.stack.service_tags#filter) for the warnings.
options:
  _input:
    description: The service name.
    type: str
    required: true
  tags:
    description:
      - The instance's tags, as a list or as a comma-separated registrator C(SERVICE_TAGS) value.
    type: raw
    default: []
  domains:
    description:
      - Domains every host also answers under, as a list or as a C(:)-separated C(HAPROXY_DOMAIN) value.
    type: raw
    default: []
seealso:
  - plugin: autoproxy.stack.service_tags
    plugin_type: filter
author:
  - autoproxy.stack contributors (@autoproxy-stack)
"""

EXAMPLES = r"""
- name: Hosts of service www tagged hello, under two domains
  ansible.builtin.assert:
    that:
      - >-
        ('www' | autoproxy.stack.service_hosts(['hello'], ['127.0.0.1.nip.io', 'test']))
        == ['www.hello', 'www.hello.127.0.0.1.nip.io', 'www.hello.test']

- name: An untagged service with an alias, domains given as HAPROXY_DOMAIN
  ansible.builtin.debug:
    msg: >-
      {{ 'consul-admin_infra' | autoproxy.stack.service_hosts(tags='server_alias=consul.example.com', domains='test') }}
  # [consul-admin.infra, consul-admin.infra.test, consul.example.com, consul.example.com.test]
"""

RETURN = r"""
_value:
  description: The host names, lower-cased, each once.
  type: list
  elements: str
"""


FQCN = "autoproxy.stack.service_hosts"


def service_hosts(name: Any, tags: Any = (), domains: Any = ()) -> list[str]:
    if not valid_service_name(name):
        raise AnsibleFilterError(f"{FQCN}: {name!r} is not a routable service name "
                                 "(1-200 of A-Z a-z 0-9 _ . - that form a host name)")
    if isinstance(tags, str):
        tags = split_escaped(tags)
    elif not isinstance(tags, (list, tuple)):
        raise AnsibleFilterError(f"{FQCN}: tags must be a list or a comma-separated string, not {describe_kind(tags)}")
    if not isinstance(domains, (str, list, tuple)):
        raise AnsibleFilterError(f"{FQCN}: domains must be a list or a ':'-separated string, "
                                 f"not {describe_kind(domains)}")
    return hosts_of(name, tags, list(domains) if not isinstance(domains, str) else domains)


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"service_hosts": service_hosts}
