# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The modules' docs and argument specs agree, and their EXAMPLES only use documented options.

ansible-test's validate-modules checks the first more thoroughly; this runs in a second with
the unit tests. The EXAMPLES are executed for real by tests/e2e/test_examples.py.
"""

from __future__ import annotations

import importlib
import os

import pytest
import yaml

from ansible_collections.autoproxy.stack.plugins.doc_fragments._consul import ModuleDocFragment

MODULES = ("consul_service", "consul_catalog_info", "haproxy_config")
RUNTIME_YML = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "meta", "runtime.yml")
CONNECTION_OPTIONS = set(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"])


def load(name):
    return importlib.import_module(f"ansible_collections.autoproxy.stack.plugins.modules.{name}")


def tasks_using(tasks, fqcn):
    for task in tasks:
        if fqcn in task:
            yield task[fqcn]
        yield from tasks_using(task.get("block", []), fqcn)


@pytest.mark.parametrize("name", MODULES)
def test_documented_options_are_the_argument_spec(name):
    module = load(name)
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert "autoproxy.stack._consul" in doc["extends_documentation_fragment"]
    assert set(doc["options"]) | CONNECTION_OPTIONS == set(module.ARGUMENT_SPEC)


@pytest.mark.parametrize("name", MODULES)
def test_examples_use_only_documented_options(name):
    module = load(name)
    examples = yaml.safe_load(module.EXAMPLES)
    used = list(tasks_using(examples, f"autoproxy.stack.{name}"))
    assert used, f"no example of {name}"
    for options in used:
        assert set(options) <= set(module.ARGUMENT_SPEC), options


@pytest.mark.parametrize("name", MODULES)
def test_every_module_is_in_the_consul_action_group(name):
    with open(RUNTIME_YML, encoding="utf-8") as handle:
        assert name in yaml.safe_load(handle)["action_groups"]["consul"]
