# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from typing import Any, Callable

from ansible.errors import AnsibleFilterError

from ansible_collections.autoproxy.stack.plugins.module_utils._routing import backend_name

DOCUMENTATION = r"""
name: haproxy_backend_name
short_description: The HAProxy backend name the autoproxy proxy gives a service
version_added: 0.1.0
description:
  - C(<tag>_<service>_backend) for a service routed by tag (routing rule 1 of docs/RULES.md), C(<service>_backend)
    for one without routing tags (routing rule 2). Useful to read HAProxy's stats or Runtime API for a service.
options:
  _input:
    description: The service name.
    type: str
    required: true
  routing_tag:
    description:
      - The routing tag, as the P(autoproxy.stack.service_tags#filter) filter returns it. Omit for a service without
        routing tags.
    type: str
seealso:
  - plugin: autoproxy.stack.service_tags
    plugin_type: filter
author:
  - autoproxy.stack contributors (@autoproxy-stack)
"""

EXAMPLES = r"""
- name: Backend names of service www
  ansible.builtin.assert:
    that:
      - ('www' | autoproxy.stack.haproxy_backend_name('hello')) == 'hello_www_backend'
      - ('www' | autoproxy.stack.haproxy_backend_name('world.dev')) == 'world.dev_www_backend'
      - ('www_hello' | autoproxy.stack.haproxy_backend_name) == 'www_hello_backend'

- name: One backend per routing tag of a service
  ansible.builtin.debug:
    msg: "{{ 'www' | autoproxy.stack.haproxy_backend_name(item) }}"
  loop: "{{ (['hello', 'world.dev', 'weight=5'] | autoproxy.stack.service_tags).routing }}"
"""

RETURN = r"""
_value:
  description: The backend name.
  type: str
"""


FQCN = "autoproxy.stack.haproxy_backend_name"


def haproxy_backend_name(name: str, routing_tag: str | None = None) -> str:
    try:
        return backend_name(name, routing_tag)
    except ValueError as exc:
        raise AnsibleFilterError(f"{FQCN}: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"haproxy_backend_name": haproxy_backend_name}
