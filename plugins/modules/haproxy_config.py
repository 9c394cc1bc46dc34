#!/usr/bin/python
# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_config
short_description: Build HAProxy's config from the Consul catalog, validate it, write it and reload HAProxy
version_added: 0.1.0
description:
  - Builds the routing table from the Consul catalog (or from O(instances)) and renders C(haproxy.cfg) and its
    C(hosts.map) exactly as the autoproxy proxy agent does, with the same code.
  - Validates the result with C(haproxy -c), either with a binary on the target or inside a container, before writing
    anything. A configuration that fails is never written; the error names the service (or the proxy setting) behind
    the lines HAProxy refused.
  - Writes both files atomically into O(path), optionally keeping backups, and optionally reloads a running HAProxy
    through its master CLI or a signal to its container, checking that the reload took.
  - Reports a change when a file's content differs, or its owner, group, mode or SELinux context differs from the
    options that set them. Only a change of content reloads HAProxy.
  - A file it creates gets mode C(0644) unless O(mode) says otherwise; a file it replaces keeps its owner, group, mode
    and SELinux context unless the options say otherwise.
extends_documentation_fragment:
  - autoproxy.stack._consul
  - autoproxy.stack._consul.ACTIONGROUP
  - ansible.builtin.files
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: Check mode reads Consul and the files and runs the validation, but writes nothing and reloads nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details: One text diff per file.
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
    support: full
  safe_file_operations:
    description: Uses Ansible's strict file operation functions to ensure proper permissions and avoid data corruption.
    support: full
options:
  path:
    description:
      - Directory that holds C(haproxy.cfg) and C(hosts.map). Created if missing.
    type: path
    required: true
  instances:
    description:
      - Build from these service instances instead of reading Consul (which is then not contacted).
      - Each is a dict with C(service), C(id), C(address), C(port), and optionally C(tags) (list), C(node) and
        C(passing) (default V(true)), as the RV(autoproxy.stack.consul_catalog_info#module:instances) of
        M(autoproxy.stack.consul_catalog_info) are.
      - An instance that breaks a routing rule is left out with a warning that names it.
    type: list
    elements: dict
  domains:
    description:
      - Domains every host also answers under.
    type: list
    elements: str
    default: [127.0.0.1.nip.io, test]
  http_port:
    description: Port of the HTTP frontend.
    type: int
    default: 80
  stats_port:
    description: Port of the stats page.
    type: int
    default: 1936
  stats_user:
    description: User for the stats page's basic auth. Requires O(stats_password).
    type: str
  stats_password:
    description: Password for the stats page's basic auth. Requires O(stats_user).
    type: str
  check_interval:
    description: Interval of HAProxy's own checks of every server, an HAProxy duration such as C(2s).
    type: str
    default: 2s
  runtime_socket:
    description: Path of HAProxy's Runtime API socket, as HAProxy sees it.
    type: str
    default: /run/haproxy/admin.sock
  access_log:
    description: Log every request to stdout.
    type: bool
    default: false
  access_log_format:
    description:
      - Format of the access log, see the collection's README.
      - V(text) is HAProxy's C(httplog) fields with the routed host before the request line; V(json) is one JSON object
        per line.
    type: str
    choices: [text, json]
    default: text
  timeouts:
    description:
      - HAProxy durations (such as C(30s), C(1h)) for C(timeout connect), C(client), C(server), C(tunnel) (an upgraded
        connection such as a WebSocket), C(http-request) and C(http-keep-alive). Keys left out keep their defaults.
    type: dict
    suboptions:
      connect:
        description: HAProxy C(timeout connect).
        type: str
        default: 1s
      client:
        description: HAProxy C(timeout client).
        type: str
        default: 30s
      server:
        description: HAProxy C(timeout server).
        type: str
        default: 30s
      tunnel:
        description: HAProxy C(timeout tunnel).
        type: str
        default: 1h
      http_request:
        description: HAProxy C(timeout http-request).
        type: str
        default: 10s
      http_keep_alive:
        description: HAProxy C(timeout http-keep-alive).
        type: str
        default: 10s
  maxconn:
    description: Connections HAProxy holds at once (global C(maxconn)).
    type: int
    default: 4096
  http_maxconn:
    description: Connections the HTTP frontend takes at once, at most O(maxconn).
    type: int
    default: 4000
  stats_maxconn:
    description: Connections the stats page takes at once, at most O(maxconn).
    type: int
    default: 64
  trusted_networks:
    description:
      - Client networks (CIDR) whose own C(X-Forwarded-*), C(X-Real-IP) and C(Forwarded) headers are kept.
      - From any other client these headers are removed and set anew.
    type: list
    elements: str
    default: []
  consul_ui_service:
    description: The Consul UI's service name; each host routed to it is guarded by O(consul_ui_access), none if empty.
    type: str
    default: consul-admin_infra
  consul_ui_access:
    description:
      - V(read_only) lets only GET and HEAD through to the Consul UI and refuses Consul's write endpoints (and its
        snapshot) with 403; V(full) lets everything through and requires O(consul_ui_user) and O(consul_ui_password).
    type: str
    choices: [read_only, full]
    default: read_only
  consul_ui_user:
    description: User for basic auth on the Consul UI. Requires O(consul_ui_password).
    type: str
  consul_ui_password:
    description: Password for basic auth on the Consul UI. Requires O(consul_ui_user).
    type: str
  validate:
    description:
      - Run C(haproxy -c) on the new configuration before writing it.
    type: bool
    default: true
  haproxy_binary:
    description:
      - The HAProxy binary used for validation, on the target or inside O(container).
    type: str
    default: haproxy
  container:
    description:
      - Name of a running Docker container to validate in (C(docker exec)) and to reload, instead of the target.
        The files are still written to O(path) on the target, typically a directory the container mounts.
    type: str
  backup:
    description:
      - Keep a timestamped copy of each file it replaces.
    type: bool
    default: false
  reload:
    description:
      - How to reload a running HAProxy after a change. Nothing is reloaded when the files did not change.
      - V(master_socket) sends C(reload) to the master CLI at O(master_socket) (HAProxy started with
        C(-W -S <socket>)) and checks that HAProxy loaded the new config. With O(container), the socket is inside the
        container and the reload and its check run there, through the C(reload) subcommand of the autoproxy agent
        image.
      - V(signal) sends O(reload_signal) to O(container) (C(docker kill)); its main process must be the HAProxy
        master, as in the official HAProxy images. The module checks that the container still runs.
    type: str
    choices: [none, master_socket, signal]
    default: none
  master_socket:
    description: Path of HAProxy's master CLI socket.
    type: str
    default: /run/haproxy/master.sock
  reload_signal:
    description: Signal for O(reload=signal).
    type: str
    default: USR2
notes:
  - With the autoproxy proxy agent running, the agent owns its HAProxy's config and rewrites it on every catalog change;
    use this module for your own HAProxy, or against the agent's container only to validate or predict (check mode).
  - The rendered config binds its ports at start and reload, not at C(haproxy -c) time, so validation does not need
    the ports to be free.
seealso:
  - module: autoproxy.stack.consul_catalog_info
  - module: autoproxy.stack.consul_service
author:
  - autoproxy.stack contributors (@autoproxy-stack)
"""

EXAMPLES = r"""
- name: Render the proxy config from the local Consul agent and validate it with the host's HAProxy
  autoproxy.stack.haproxy_config:
    path: /etc/haproxy/autoproxy
    haproxy_binary: /usr/sbin/haproxy
    domains: [example.com]
    backup: true
  register: proxy_config

- name: Show where each host goes
  ansible.builtin.debug:
    msg: "{{ proxy_config.routes }}"

- name: Render from a given list of instances, validate in the HAProxy container and reload it
  autoproxy.stack.haproxy_config:
    path: /srv/haproxy
    instances:
      - {service: www, id: www-1, address: 10.0.0.11, port: 8080, tags: [hello]}
      - {service: www, id: www-2, address: 10.0.0.12, port: 8080, tags: [hello], passing: false}
    container: haproxy
    reload: master_socket
"""

RETURN = r"""
path:
  description: The directory written.
  returned: success
  type: str
  sample: /etc/haproxy/autoproxy
config:
  description: The rendered C(haproxy.cfg).
  returned: success
  type: str
routing_table:
  description: The routing table the config was rendered from, as M(autoproxy.stack.consul_catalog_info) returns it.
  returned: success
  type: dict
routes:
  description: One line per host, C(host -> backend -> servers).
  returned: success
  type: list
  elements: str
  sample: ["www.hello.example.com -> hello_www_backend -> 10.0.0.11:8080"]
validation:
  description: What C(haproxy -c) reported about the new configuration (its warnings), empty if it did not run.
  returned: success
  type: str
backup_files:
  description: The backups made.
  returned: success
  type: list
  elements: str
reloaded:
  description: Whether HAProxy was reloaded (in check mode, whether it would be).
  returned: success
  type: bool
reload_output:
  description: What the reload reported (HAProxy's answer or reload count, or the signal sent).
  returned: when HAProxy was reloaded
  type: str
  sample: "reloads: 3"
"""

import os
import tempfile
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.autoproxy.stack.plugins.module_utils._consul import ConsulError
from ansible_collections.autoproxy.stack.plugins.module_utils._consul_catalog import fetch_instances
from ansible_collections.autoproxy.stack.plugins.module_utils._consul_module import (
    consul_argument_spec,
    consul_client,
    consul_failure,
    consul_status,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import (
    CONFIG_NAME,
    HaproxyError,
    cli_command,
    findings,
    read_config_dir,
    validate_files,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    DEFAULT_STATS_PORT,
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_master import ReloadError, verified_reload
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_module import (
    CONTAINER_CHECK_SCRIPT,
    CONTAINER_RELOAD_COMMAND,
    blame,
    tar_files,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import build_routing_table, route_lines

ARGUMENT_SPEC = consul_argument_spec(
    path={"type": "path", "required": True},
    instances={"type": "list", "elements": "dict"},
    domains={"type": "list", "elements": "str", "default": ["127.0.0.1.nip.io", "test"]},
    http_port={"type": "int", "default": 80},
    stats_port={"type": "int", "default": DEFAULT_STATS_PORT},
    stats_user={"type": "str"},
    stats_password={"type": "str", "no_log": True},
    check_interval={"type": "str", "default": "2s"},
    runtime_socket={"type": "str", "default": "/run/haproxy/admin.sock"},
    access_log={"type": "bool", "default": False},
    access_log_format={"type": "str", "choices": ["text", "json"], "default": "text"},
    timeouts={"type": "dict", "options": {
        "connect": {"type": "str", "default": "1s"},
        "client": {"type": "str", "default": "30s"},
        "server": {"type": "str", "default": "30s"},
        "tunnel": {"type": "str", "default": "1h"},
        "http_request": {"type": "str", "default": "10s"},
        "http_keep_alive": {"type": "str", "default": "10s"},
    }},
    maxconn={"type": "int", "default": 4096},
    http_maxconn={"type": "int", "default": 4000},
    stats_maxconn={"type": "int", "default": 64},
    trusted_networks={"type": "list", "elements": "str", "default": []},
    consul_ui_service={"type": "str", "default": "consul-admin_infra"},
    consul_ui_access={"type": "str", "choices": ["read_only", "full"], "default": "read_only"},
    consul_ui_user={"type": "str"},
    consul_ui_password={"type": "str", "no_log": True},
    validate={"type": "bool", "default": True},
    haproxy_binary={"type": "str", "default": "haproxy"},
    container={"type": "str"},
    backup={"type": "bool", "default": False},
    reload={"type": "str", "choices": ["none", "master_socket", "signal"], "default": "none"},
    master_socket={"type": "str", "default": "/run/haproxy/master.sock"},
    reload_signal={"type": "str", "default": "USR2"},
)


class HaproxyConfig:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.docker = module.get_bin_path("docker", required=True) if self.params["container"] else None

    # ---- inputs
    def instances(self) -> list[dict[str, Any]]:
        if self.params["instances"] is not None:
            return [dict(instance, passing=instance.get("passing", True)) for instance in self.params["instances"]]
        try:
            return fetch_instances(consul_client(self.params))[0]
        except ConsulError as exc:
            self.module.fail_json(msg=consul_failure(exc, "reading the Consul catalog"), **consul_status(exc))

    def settings(self) -> HaproxySettings:
        p = self.params
        timeouts = {f"timeout_{name}": value for name, value in (p["timeouts"] or {}).items() if value is not None}
        return HaproxySettings(http_port=p["http_port"], stats_port=p["stats_port"], stats_user=p["stats_user"],
                               stats_password=p["stats_password"], check_interval=p["check_interval"],
                               runtime_socket=p["runtime_socket"], log_stdout=p["access_log"],
                               log_format=p["access_log_format"], maxconn=p["maxconn"], http_maxconn=p["http_maxconn"],
                               stats_maxconn=p["stats_maxconn"], trusted_networks=tuple(p["trusted_networks"]),
                               consul_ui_service=p["consul_ui_service"], consul_ui_access=p["consul_ui_access"],
                               consul_ui_user=p["consul_ui_user"], consul_ui_password=p["consul_ui_password"],
                               **timeouts)

    # ---- validation
    def validate(self, files: dict[str, str], table: dict[str, Any]) -> str:
        if not self.params["validate"]:
            return ""
        if self.params["container"]:
            ok, output = self.validate_in_container(files)
        else:
            try:
                ok, output = validate_files(files, (self.params["haproxy_binary"],))
            except HaproxyError as exc:
                self.module.fail_json(msg=f"cannot validate: {exc}; set haproxy_binary, or validate=false")
        if not ok:
            places = blame(output, files[CONFIG_NAME], table) or ["the proxy settings"]
            self.module.fail_json(
                msg=f"haproxy -c rejected the configuration rendered for {', '.join(places)}; nothing was written. "
                f"HAProxy said: {output}",
                config=files[CONFIG_NAME],
            )
        return output

    def validate_in_container(self, files: dict[str, str]) -> tuple[bool, str]:
        cmd = [self.docker, "exec", "-i", self.params["container"], "sh", "-c", CONTAINER_CHECK_SCRIPT,
               self.params["haproxy_binary"]]
        rc, out, err = self.module.run_command(cmd, data=tar_files(files), binary_data=True)
        output = (out + err).strip()
        if rc != 0 and "[ALERT]" not in output:
            self.module.fail_json(msg=f"cannot validate in container {self.params['container']!r}: {output}")
        return rc == 0, findings(output)

    # ---- reload
    def reload(self) -> str:
        how = self.params["reload"]
        try:
            if how != "master_socket":
                return self.signal_container()
            if self.params["container"]:
                return self.reload_in_container()
            socket_path = self.params["master_socket"]
            return verified_reload(lambda command: cli_command(socket_path, command))
        except HaproxyError as exc:
            self.module.fail_json(msg=f"the new configuration was written to {self.params['path']}, but the reload "
                                  f"failed: {exc}")

    def reload_in_container(self) -> str:
        """The agent image's ``reload`` subcommand: the same verified reload, next to the master socket."""
        container = self.params["container"]
        cmd = [self.docker, "exec", container, *CONTAINER_RELOAD_COMMAND,
               "--master-socket", self.params["master_socket"]]
        rc, out, err = self.module.run_command(cmd)
        if rc == 1:
            raise ReloadError(err.strip() or out.strip())
        if rc != 0:
            raise HaproxyError(f"docker exec {container} (autoproxy-agent reload) failed: {err.strip() or out}")
        return out.strip()

    def started_at(self, container: str) -> str:
        rc, out, err = self.module.run_command(
            [self.docker, "inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", container])
        if rc != 0:
            raise HaproxyError(f"cannot inspect container {container!r}: {err.strip()}")
        return out.strip()

    def signal_container(self) -> str:
        container = self.params["container"]
        before = self.started_at(container)
        rc, out, err = self.module.run_command([self.docker, "kill", "-s", self.params["reload_signal"], container])
        if rc != 0:
            raise HaproxyError(f"docker kill -s {self.params['reload_signal']} {container} failed: {err.strip()}")
        time.sleep(1)
        after = self.started_at(container)
        if after != before:
            raise ReloadError(f"container {container!r} stopped or restarted on SIG{self.params['reload_signal']}: "
                              "its main process is not the HAProxy master; use reload=master_socket")
        return f"SIG{self.params['reload_signal']} sent"

    # ---- the task
    def run(self) -> dict[str, Any]:
        table = build_routing_table(self.instances(), self.params["domains"])
        for warning in table.get("warnings", []):
            self.module.warn(warning)
        try:
            files = render_haproxy_config(table, self.settings())
        except ValueError as exc:
            self.module.fail_json(msg=f"cannot render the configuration: {exc}")
        path = self.params["path"]
        current = read_config_dir(path, sorted(files))
        changed_names = [name for name in sorted(files) if current[name] != files[name]]
        result = {"changed": bool(changed_names), "path": path, "config": files[CONFIG_NAME],
                  "routing_table": table, "routes": route_lines(table), "validation": "", "backup_files": [],
                  "reloaded": False}
        if changed_names:
            result["validation"] = self.validate(files, table)
            result["reloaded"] = self.params["reload"] != "none"
            if not self.module.check_mode:
                result["backup_files"] = self.write(path, files, current, changed_names)
        # In check mode a file not written yet has no attributes to compare; it counts as changed already.
        existing = [name for name in sorted(files) if not self.module.check_mode or current[name] is not None]
        created = [name for name in changed_names if current[name] is None]
        result["changed"] = self.set_attributes(path, existing, created, result["changed"])
        if result["reloaded"] and not self.module.check_mode:
            result["reload_output"] = self.reload()
        if self.module._diff:
            result["diff"] = [{"before_header": os.path.join(path, name), "after_header": os.path.join(path, name),
                               "before": current[name] or "", "after": files[name]} for name in sorted(files)]
        return result

    def write(self, path: str, files: dict[str, str], current: dict[str, str | None],
              changed_names: list[str]) -> list[str]:
        """Replace each changed file through Ansible's atomic_move, haproxy.cfg last, so a reader
        that sees the new config also sees the files it names; return the backups made."""
        backups = []
        if self.params["backup"]:
            backups = [self.module.backup_local(os.path.join(path, name))
                       for name in changed_names if current[name] is not None]
        try:
            os.makedirs(path, exist_ok=True)
            for name in sorted(changed_names, key=lambda name: name == CONFIG_NAME):
                self.install(os.path.join(path, name), files[name])
        # atomic_move raises a bare Exception in ansible-core 2.19 (it called fail_json before).
        except Exception as exc:  # noqa: BLE001
            self.module.fail_json(msg=f"cannot write the configuration to {path}: {exc}", backup_files=backups)
        return backups

    def install(self, dest: str, text: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=f".{os.path.basename(dest)}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            self.module.atomic_move(tmp, dest, unsafe_writes=self.params["unsafe_writes"])
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def set_attributes(self, path: str, names: list[str], created: list[str], changed: bool) -> bool:
        """Owner, group, mode and SELinux context of each file as the options say (0644 for a new
        file when mode is not given, as HAProxy may read it as another user); True if anything changed."""
        for name in names:
            dest = os.path.join(path, name)
            file_args: dict[str, Any] = self.module.load_file_common_arguments(self.params, path=dest)
            if file_args["mode"] is None and name in created:
                file_args["mode"] = 0o644
            changed = self.module.set_fs_attributes_if_different(file_args, changed)
        return changed


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_together=[("stats_user", "stats_password"), ("consul_ui_user", "consul_ui_password")],
        required_if=[("reload", "signal", ["container"]), ("consul_ui_access", "full", ["consul_ui_user"])],
        supports_check_mode=True,
        add_file_common_args=True,
    )
    module.exit_json(**HaproxyConfig(module).run())


if __name__ == "__main__":
    main()
