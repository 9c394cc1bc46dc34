#!/usr/bin/python
# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: consul_catalog_info
short_description: Read the Consul catalog and the routing table the proxy builds from it
version_added: 0.1.0
description:
  - Reads every service instance from Consul's catalog and health API, with whether all its checks pass.
  - Returns the services with their passing and failing instances, and the routing table the autoproxy proxy agent
    builds from them (hosts, backends, servers), the same rules applied by the same code, with the warnings for names
    and tags that were dropped.
extends_documentation_fragment:
  - autoproxy.stack._consul
  - autoproxy.stack._consul.ACTIONGROUP
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
options:
  service:
    description:
      - Only read instances of this service. The routing table is then that service's part of it.
    type: str
  domains:
    description:
      - Domains every host also answers under, as the proxy agent is configured.
    type: list
    elements: str
    default: [127.0.0.1.nip.io, test]
seealso:
  - module: autoproxy.stack.consul_service
  - module: autoproxy.stack.haproxy_config
author:
  - autoproxy.stack contributors (@autoproxy-stack)
"""

EXAMPLES = r"""
- name: Read the routing table from the local Consul agent
  autoproxy.stack.consul_catalog_info:
    domains: [127.0.0.1.nip.io, test]
  register: catalog

- name: Show host -> backend -> servers
  ansible.builtin.debug:
    msg: "{{ catalog.routes }}"

- name: Wait until the Consul servers themselves pass their checks
  autoproxy.stack.consul_catalog_info:
    service: consul
  register: consul_servers
  until: consul_servers.services.consul.passing | default([]) | length >= 1
  retries: 30
  delay: 1
"""

RETURN = r"""
services:
  description: Each service read, with the ids of its passing and failing instances.
  returned: success
  type: dict
  sample:
    www: {passing: ["host:autoproxy_web_1:80"], failing: []}
instances:
  description: Every instance read, normalised.
  returned: success
  type: list
  elements: dict
  sample:
    - {service: www, id: "host:autoproxy_web_1:80", node: consul, address: 172.18.0.5, port: 80,
       tags: [hello], meta: {autoproxy_container: autoproxy_web_1}, passing: true}
routing_table:
  description: The routing table, as the proxy agent builds it.
  returned: success
  type: dict
  contains:
    backends:
      description: Backend name to its service, hosts, options and servers (passing instances only).
      type: dict
    hosts:
      description: Host name to backend name.
      type: dict
    warnings:
      description: Names and tags that were dropped, and why.
      type: list
      elements: str
routes:
  description: One line per host, C(host -> backend -> servers), for people.
  returned: success
  type: list
  elements: str
  sample: ["www.hello.test -> hello_www_backend -> 172.18.0.5:80"]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, ConsulError
from ansible_collections.autoproxy.stack.plugins.module_utils._consul_catalog import (
    fetch_instances,
    normalise_health_entry,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._consul_module import (
    consul_argument_spec,
    consul_client,
    consul_failure,
    consul_status,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table, route_lines

ARGUMENT_SPEC = consul_argument_spec(
    service={"type": "str"},
    domains={"type": "list", "elements": "str", "default": ["127.0.0.1.nip.io", "test"]},
)


def read_instances(client: ConsulClient, service: str | None) -> list[dict[str, Any]]:
    if not service:
        return fetch_instances(client)[0]
    entries = client.health_service(service)[0]
    return [normalise_health_entry(entry) for entry in entries or []]


def services_summary(instances: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    services: dict[str, dict[str, list[str]]] = {}
    for instance in instances:
        entry = services.setdefault(instance["service"], {"passing": [], "failing": []})
        entry["passing" if instance["passing"] else "failing"].append(instance["id"])
    return services


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        instances = read_instances(consul_client(module.params), module.params["service"])
    except ConsulError as exc:
        module.fail_json(msg=consul_failure(exc, "reading the Consul catalog"), **consul_status(exc))
    table = build_routing_table(instances, module.params["domains"])
    for warning in table.get("warnings", []):
        module.warn(warning)
    module.exit_json(changed=False, services=services_summary(instances), instances=instances, routing_table=table,
                     routes=route_lines(table))


if __name__ == "__main__":
    main()
