# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # PRIVATE to the collection. Connection options of every module that talks to Consul; the
    # argument spec is CONNECTION_ARGSPEC in module_utils/_consul_module.py.
    DOCUMENTATION = r"""
options:
  url:
    description:
      - URL of the Consul HTTP API, usually the local agent.
      - If not set, the E(CONSUL_HTTP_ADDR) environment variable is used (as Consul's CLI does; C(host:port)
        without a scheme means C(http://)), and then the default.
    type: str
    default: http://127.0.0.1:8500
  token:
    description:
      - ACL token sent as C(X-Consul-Token).
      - If not set, the E(CONSUL_HTTP_TOKEN) environment variable is used.
    type: str
  validate_certs:
    description:
      - Whether to verify the server certificate when O(url) is C(https).
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle used to verify the server certificate when O(url) is C(https).
    type: path
  timeout:
    description:
      - Seconds to wait for each request to Consul.
    type: float
    default: 10
"""

    ACTIONGROUP = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/autoproxy.stack.consul) in C(module_defaults) to set the connection options once.
    support: full
    membership:
      - autoproxy.stack.consul
"""
