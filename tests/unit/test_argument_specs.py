# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every role's meta/argument_specs.yml says exactly what its defaults/main.yml defines.

An option documented but not defined, or defined but not documented, is a lie in ansible-doc
and in the role's run-time validation. Where a default can be worked out without a play (a
literal, or a template over other defaults and ``default()``), it must also pass the role's own
argument spec (the check Ansible runs when the role starts) and equal the documented default.
"""

from __future__ import annotations

import os

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from jinja2 import StrictUndefined, TemplateError
from jinja2.nativetypes import NativeEnvironment

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLES_DIR = os.path.join(ROOT, "roles")
ROLES = sorted(name for name in os.listdir(ROLES_DIR) if os.path.isdir(os.path.join(ROLES_DIR, name)))


def read_yaml(role, *path):
    full = os.path.join(ROLES_DIR, role, *path)
    if not os.path.exists(full):
        return None
    with open(full, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def entry_points(role):
    specs = read_yaml(role, "meta", "argument_specs.yml")
    if specs is None:
        pytest.fail(f"role {role}: meta/argument_specs.yml is missing")
    return specs["argument_specs"]


def documented_options(role):
    """{option: spec} over every entry point of the role (an option may appear in several)."""
    options = {}
    for entry in entry_points(role).values():
        options.update(entry.get("options") or {})
    return options


def defaults(role):
    return read_yaml(role, "defaults", "main.yml") or {}


def role_vars(role):
    return read_yaml(role, "vars", "main.yml") or {}


def render_defaults(values):
    """The defaults that render without a play: literals, and templates over other defaults.

    Templates that need anything else (facts, filters from Ansible) are left out: those
    defaults cannot be checked here.
    """
    env = NativeEnvironment(undefined=StrictUndefined)
    rendered = {key: value for key, value in values.items() if not isinstance(value, str) or "{{" not in value}
    pending = {key: value for key, value in values.items() if key not in rendered}
    progress = True
    while pending and progress:
        progress = False
        for key, template in list(pending.items()):
            try:
                rendered[key] = env.from_string(template).render(**rendered)
            except TemplateError:
                continue
            del pending[key]
            progress = True
    return rendered


def test_there_are_roles_to_check():
    assert {"consul", "proxy", "registrator", "demo_app", "agent_image"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_documented(role):
    undocumented = sorted(set(defaults(role)) - set(documented_options(role)))
    assert not undocumented, f"role {role}: {undocumented} in defaults/main.yml but not in meta/argument_specs.yml"


@pytest.mark.parametrize("role", ROLES)
def test_every_documented_option_is_defined(role):
    """An option without a default must be a required input; one with a default must have it in defaults/."""
    options = documented_options(role)
    missing = sorted(name for name, spec in options.items()
                     if name not in defaults(role) and not spec.get("required", False))
    assert not missing, f"role {role}: {missing} documented but not defined in defaults/main.yml (nor required)"
    required_with_default = sorted(name for name, spec in options.items()
                                   if spec.get("required", False) and name in defaults(role))
    assert not required_with_default, f"role {role}: {required_with_default} documented as required but given a default"


@pytest.mark.parametrize("role", ROLES)
def test_no_documented_option_is_overridden_by_role_vars(role):
    """vars/main.yml beats anything the caller sets but extra vars: such a variable is no input."""
    overridden = sorted(set(documented_options(role)) & set(role_vars(role)))
    assert not overridden, f"role {role}: {overridden} documented as options but fixed in vars/main.yml"


@pytest.mark.parametrize("role", ROLES)
def test_every_option_has_a_type_and_a_description(role):
    incomplete = sorted(name for name, spec in documented_options(role).items()
                        if "type" not in spec or not spec.get("description"))
    assert not incomplete, f"role {role}: {incomplete} without a type or a description"


# Python types a literal YAML default may have for each argument spec type (Ansible would convert
# others silently: a list given to a str option becomes the string "['a']").
LITERAL_TYPES = {"str": str, "path": str, "int": int, "float": (int, float), "bool": bool, "list": list,
                 "dict": dict}


@pytest.mark.parametrize("role", ROLES)
def test_literal_defaults_have_the_documented_type(role):
    options = documented_options(role)
    wrong = {name: (options[name]["type"], type(value).__name__) for name, value in defaults(role).items()
             if name in options and options[name].get("type") in LITERAL_TYPES
             and not (isinstance(value, str) and "{{" in value)
             and (not isinstance(value, LITERAL_TYPES[options[name]["type"]])
                  or (isinstance(value, bool) and options[name]["type"] != "bool"))}
    assert not wrong, f"role {role}: defaults whose YAML type is not the documented one (documented, YAML): {wrong}"


@pytest.mark.parametrize("role", ROLES)
def test_defaults_pass_the_roles_own_argument_spec(role):
    for name, entry in entry_points(role).items():
        spec = entry.get("options") or {}
        values = {key: value for key, value in render_defaults(defaults(role)).items() if key in spec}
        result = ArgumentSpecValidator(spec).validate(values)
        assert not result.error_messages, f"role {role}, entry point {name}: {result.error_messages}"


@pytest.mark.parametrize("role", ROLES)
def test_documented_defaults_are_the_real_ones(role):
    options = documented_options(role)
    rendered = render_defaults(defaults(role))
    checked = {name: value for name, value in rendered.items() if name in options and "default" in options[name]}
    real = ArgumentSpecValidator(options).validate(checked).validated_parameters
    documented = ArgumentSpecValidator(options).validate(
        {name: options[name]["default"] for name in checked}).validated_parameters
    differ = {name: (documented[name], real[name]) for name in checked if documented[name] != real[name]}
    assert not differ, f"role {role}: documented default != defaults/main.yml (documented, real): {differ}"
    no_default = sorted(name for name in rendered if name in options and "default" not in options[name])
    assert not no_default, f"role {role}: {no_default} have a default in defaults/main.yml but none documented"


def test_templated_defaults_are_rendered():
    """The check above covers templated defaults too, not only literals."""
    assert render_defaults({"a_prefix": "{{ autoproxy_prefix | default('autoproxy') }}",
                            "a_name": "{{ a_prefix }}_consul", "a_port": "{{ port | default(8500) }}",
                            "a_host": "{{ ansible_facts['hostname'] }}"}) == {
        "a_prefix": "autoproxy", "a_name": "autoproxy_consul", "a_port": 8500}
