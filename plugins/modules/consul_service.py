#!/usr/bin/python
# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: consul_service
short_description: Register or deregister one service instance, with its health checks, on a Consul agent
version_added: 0.1.0
description:
  - Registers one service instance on a Consul agent (its name, id, address, port, tags, meta and its http, tcp and
    ttl health checks), or deregisters it.
  - Compares what the agent holds with what was asked, looking only at the options given, and changes nothing when
    they match. A change re-registers the service with the agent's other settings kept.
  - For containers on a host that runs the autoproxy registrator agent you do not need this module; it is for
    services the registrator does not see (VMs, host processes, external endpoints).
extends_documentation_fragment:
  - autoproxy.stack._consul
  - autoproxy.stack._consul.ACTIONGROUP
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details: The diff is the registration before and after, in the shape of this module's options.
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
    support: full
options:
  state:
    description:
      - V(present) registers the service, or updates the keys that differ.
      - V(absent) deregisters it (and its checks). A service the agent does not hold is not an error.
    type: str
    choices: [present, absent]
    default: present
  name:
    description:
      - Service name. Required with O(state=present).
    type: str
  id:
    description:
      - Service instance id, unique on this agent. Defaults to O(name).
    type: str
  address:
    description:
      - Address of the instance. Consul uses the node's address when it is empty.
    type: str
  port:
    description:
      - Port of the instance.
    type: int
  tags:
    description:
      - Tags of the instance. For autoproxy routing these are the routing tags, options and metadata; see the
        P(autoproxy.stack.service_tags#filter) filter.
      - The order counts, as in Consul.
    type: list
    elements: str
  meta:
    description:
      - Key/value metadata of the instance. Values must be strings; numbers are turned into strings.
    type: dict
  checks:
    description:
      - The health checks of this instance. When given, this is the whole list; checks of this instance that the
        agent holds and that are not listed are removed. When not given, the agent's checks are left alone.
      - Each check needs exactly one of O(checks[].http), O(checks[].tcp) or O(checks[].ttl).
    type: list
    elements: dict
    suboptions:
      id:
        description:
          - Check id. Defaults to Consul's own choice, C(service:<id>) for one check and C(service:<id>:<n>) (from 1)
            for several.
        type: str
      name:
        description:
          - Check name. Consul calls it C(Service '<name>' check) if not set.
        type: str
      http:
        description:
          - URL that must answer 2xx (passing) or 429 (warning).
        type: str
      tcp:
        description:
          - C(host:port) that must accept a TCP connection.
        type: str
      ttl:
        description:
          - The check is critical unless the service reports it passing at least this often (a duration such as
            C(30s)).
        type: str
      interval:
        description:
          - How often to run an O(checks[].http) or O(checks[].tcp) check, a duration such as C(10s). Required for them.
        type: str
      timeout:
        description:
          - How long an O(checks[].http) or O(checks[].tcp) check may take, a duration such as C(2s).
        type: str
      deregister_critical_service_after:
        description:
          - Deregister the service when this check has been critical for this long, a duration such as C(90m).
        type: str
      status:
        description:
          - Status of the check when it is (re)registered, until it first runs. Not compared with the current status,
            which the check itself changes.
        type: str
        choices: [passing, warning, critical]
notes:
  - Consul's API does not return a check's definition (URL, interval...) on every version, so the module stores it in
    the check's C(Notes). A check registered by another tool is therefore re-registered once, then compared exactly.
  - Re-registering keeps the service's weights and tag override setting.
seealso:
  - module: autoproxy.stack.consul_catalog_info
  - module: autoproxy.stack.haproxy_config
author:
  - autoproxy.stack contributors (@autoproxy-stack)
"""

EXAMPLES = r"""
- name: Register a web server with an HTTP check, routed by autoproxy as www.hello
  autoproxy.stack.consul_service:
    name: www
    id: www-vm1
    address: 127.0.0.1
    port: 8081
    tags: [hello]
    meta:
      owner: web-team
    checks:
      - http: http://127.0.0.1:8081/health
        interval: 10s
        timeout: 2s
        deregister_critical_service_after: 90m

- name: Register a database with a TCP check and a TTL check that starts passing
  autoproxy.stack.consul_service:
    name: db
    port: 5432
    checks:
      - name: port open
        tcp: 127.0.0.1:5432
        interval: 5s
      - name: backup heartbeat
        ttl: 30m
        status: passing

- name: Set the connection options once for every Consul module in a block
  module_defaults:
    group/autoproxy.stack.consul:
      timeout: 5
  block:
    - name: Move www-vm1 to another port, keeping its tags, meta and checks
      autoproxy.stack.consul_service:
        name: www
        id: www-vm1
        port: 8082

    - name: Read the routing table the proxy builds
      autoproxy.stack.consul_catalog_info:
        service: www
      register: www_routes

- name: Deregister the database
  autoproxy.stack.consul_service:
    id: db
    state: absent
"""

RETURN = r"""
service:
  description:
    - The registration as the agent holds it after the task (predicted in check mode), in the shape of the options.
    - Empty after O(state=absent).
  returned: success
  type: dict
  sample:
    id: www-vm1
    name: www
    address: 127.0.0.1
    port: 8081
    tags: [hello]
    meta: {owner: web-team}
    checks:
      - {id: "service:www-vm1", name: "Service 'www' check", http: "http://127.0.0.1:8081/health", interval: 10s,
         timeout: 2s, deregister_critical_service_after: 90m}
operation:
  description: What was done (or would be, in check mode) - V(register), V(update), V(deregister) or V(none).
  returned: success
  type: str
  sample: update
differences:
  description: The asked-for keys that differed from what the agent held.
  returned: success
  type: list
  elements: str
  sample: [port, "checks[service:www-vm1].interval"]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulClient, ConsulError
from ansible_collections.autoproxy.stack.plugins.module_utils._consul_module import (
    consul_argument_spec,
    consul_client,
    consul_failure,
    consul_status,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._consul_service import (
    RegistrationError,
    current_registration,
    desired_registration,
    differences,
    merged_registration,
    registration_body,
    view,
)

_CHECK_OPTIONS = {
    "id": {"type": "str"},
    "name": {"type": "str"},
    "http": {"type": "str"},
    "tcp": {"type": "str"},
    "ttl": {"type": "str"},
    "interval": {"type": "str"},
    "timeout": {"type": "str"},
    "deregister_critical_service_after": {"type": "str"},
    "status": {"type": "str", "choices": ["passing", "warning", "critical"]},
}

ARGUMENT_SPEC = consul_argument_spec(
    state={"type": "str", "choices": ["present", "absent"], "default": "present"},
    name={"type": "str"},
    id={"type": "str"},
    address={"type": "str"},
    port={"type": "int"},
    tags={"type": "list", "elements": "str"},
    meta={"type": "dict"},
    checks={
        "type": "list",
        "elements": "dict",
        "options": _CHECK_OPTIONS,
        "mutually_exclusive": [("http", "tcp", "ttl")],
        "required_one_of": [("http", "tcp", "ttl")],
    },
)


def read_registration(client: ConsulClient, service_id: str) -> dict[str, Any] | None:
    service = client.agent_service(service_id)
    return current_registration(service, client.agent_checks() if service is not None else {})


def deregister(module: AnsibleModule, client: ConsulClient, service_id: str) -> dict[str, Any]:
    current = read_registration(client, service_id)
    changed = current is not None
    if changed and not module.check_mode:
        client.deregister_service(service_id)
    return {"changed": changed, "operation": "deregister" if changed else "none", "service": {},
            "differences": ["(service)"] if changed else [], "diff": {"before": view(current), "after": {}}}


def register(module: AnsibleModule, client: ConsulClient, desired: dict[str, Any]) -> dict[str, Any]:
    current = read_registration(client, desired["id"])
    found = differences(current, desired)
    merged = merged_registration(current, desired)
    if not found:
        operation, service = "none", view(current)
    else:
        operation = "register" if current is None else "update"
        service = view(merged)
        if not module.check_mode:
            send_checks = "checks" in desired
            client.register_service(registration_body(merged, send_checks), replace_existing_checks=send_checks)
            service = view(read_registration(client, desired["id"]))
    return {"changed": bool(found), "operation": operation, "service": service, "differences": found,
            "diff": {"before": view(current), "after": service}}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ["name"]), ("state", "absent", ["id", "name"], True)],
        supports_check_mode=True,
    )
    service_id = module.params["id"] or module.params["name"]
    client = consul_client(module.params)
    try:
        if module.params["state"] == "absent":
            result = deregister(module, client, service_id)
        else:
            result = register(module, client, desired_registration(module.params))
    except RegistrationError as exc:
        module.fail_json(msg=f"service {service_id!r}: {exc}")
    except ConsulError as exc:
        doing = f"{module.params['state']} service {service_id!r}"
        module.fail_json(msg=consul_failure(exc, doing), **consul_status(exc))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
