# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def haproxy_bin():
    """A real HAProxy binary. Missing: skipped on a workstation, an error in CI (.ci/run installs it)."""
    path = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("haproxy is not installed; .ci/run installs Debian's haproxy package")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    return path
