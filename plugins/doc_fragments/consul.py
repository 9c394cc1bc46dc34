# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every module that talks to Consul.
    DOCUMENTATION = r"""
options:
  url:
    description:
      - URL of the Consul HTTP API.
    type: str
    default: http://127.0.0.1:8500
  token:
    description:
      - ACL token sent as C(X-Consul-Token).
    type: str
  validate_certs:
    description:
      - Whether to verify the server certificate for an C(https) O(url).
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle used to verify the server certificate.
    type: path
  timeout:
    description:
      - Seconds to wait for each request.
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
