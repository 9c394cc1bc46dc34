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
  - Reads every service instance from Consul's health API, with whether all its checks pass.
  - Returns the routing table the autoproxy proxy agent builds from them (hosts, backends, servers), the same
    rules applied by the same code, and the warnings for names and tags that were dropped.
extends_documentation_fragment:
  - autoproxy.stack.consul
  - autoproxy.stack.consul.ACTIONGROUP
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
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
author:
  - autoproxy.stack contributors
"""

EXAMPLES = r"""
- name: Read the routing table
  autoproxy.stack.consul_catalog_info:
    url: http://127.0.0.1:8500
    domains: [127.0.0.1.nip.io, test]
  register: catalog

- name: Show host -> backend -> servers
  ansible.builtin.debug:
    msg: "{{ catalog.routes }}"
"""

RETURN = r"""
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.autoproxy.stack.plugins.module_utils._consul import (
    CONNECTION_ARGSPEC,
    ConsulError,
    client_from_params,
    normalise_health_entry,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table, route_lines


def main():
    argument_spec = dict(CONNECTION_ARGSPEC)
    argument_spec.update(
        service={"type": "str"},
        domains={"type": "list", "elements": "str", "default": ["127.0.0.1.nip.io", "test"]},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    client = client_from_params(module.params)
    try:
        if module.params["service"]:
            entries, _ = client.health_service(module.params["service"])
            instances = [normalise_health_entry(entry) for entry in entries or []]
        else:
            instances = client.instances()
    except ConsulError as exc:
        module.fail_json(msg=f"{exc}. Check that Consul runs and that url/token are right.")
    table = build_routing_table(instances, module.params["domains"])
    for warning in table.get("warnings", []):
        module.warn(warning)
    module.exit_json(changed=False, instances=instances, routing_table=table, routes=route_lines(table))


if __name__ == "__main__":
    main()
