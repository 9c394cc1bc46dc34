# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The agents' settings are declared once; everything else that names them agrees with the declaration.

The agents' command lines are built from the tables. The haproxy_config module's argument spec and
the proxy and registrator roles' meta/argument_specs.yml are Ansible's own declarations of (some
of) the same settings: they are compared here, name by name (type, choices, default, no_log), and
every option on either side must be accounted for, so a new setting cannot be left out silently.
The roles (tasks and vars) may only pass flags the agent declares.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import pytest
import yaml

from ansible_collections.autoproxy.stack.agents import proxy
from ansible_collections.autoproxy.stack.agents._registrator_options import parse_args as registrator_args
from ansible_collections.autoproxy.stack.plugins.module_utils._agent_settings import (
    CONSUL_CONNECTION,
    Setting,
    build_parser,
    by_name,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    render_haproxy_config,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._proxy_settings import (
    PROXY,
    PROXY_SETTINGS,
    haproxy_settings,
    settings_error,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._registrator_settings import (
    REGISTRATOR,
    REGISTRATOR_SETTINGS,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._text import split_escaped
from ansible_collections.autoproxy.stack.plugins.modules.haproxy_config import ARGUMENT_SPEC

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
# Ansible types a setting's kind may be declared as.
ANSIBLE_TYPES = {"str": ("str", "path"), "int": ("int",), "float": ("float",), "bool": ("bool",), "list": ("list",)}
CONSUL_NAMES = [setting.name for setting in CONSUL_CONNECTION]


# ---- the command lines
def test_every_flag_spelling_of_the_registrator_still_parses() -> None:
    single = registrator_args(["consul-tls://consul:8501", "-internal", "-ip", "10.0.0.5", "-explicit",
                               "-useIpFromLabel", "com.example.ip", "-tags", "a,b", "-deregister", "on-success",
                               "-cleanup", "-resync", "5", "-retry-attempts", "3", "-retry-interval", "100",
                               "--hostname=h"])
    double = registrator_args(["--consul=https://consul:8501", "--internal", "--ip=10.0.0.5", "--explicit",
                               "--use-ip-from-label=com.example.ip", "--tags=a,b", "--deregister=on-success",
                               "--cleanup", "--resync=5", "--retry-attempts=3", "--retry-interval=100",
                               "--hostname=h"])
    assert vars(single) | {"registry_uri": None} == vars(double) | {"registry_uri": None}
    assert double.consul == "https://consul:8501" and double.host_ip == "10.0.0.5" and double.resync == 5.0
    assert double.ip_from_label == "com.example.ip" and double.internal and double.cleanup


def test_registrator_off_switches_and_defaults() -> None:
    args = registrator_args(["--no-drain", "--no-script-checks", "--hostname=h"])
    assert (args.drain, args.script_checks) == (False, False)
    args = registrator_args(["--hostname=h"])
    assert (args.drain, args.script_checks, args.internal, args.tags, args.resync) == (True, True, False, "", 10.0)
    assert registrator_args([]).hostname  # the machine's name when none is given


def test_registrator_refuses_abbreviations(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        registrator_args(["--intern"])
    assert "--intern" in capsys.readouterr().err


@pytest.mark.parametrize("parse", [proxy.parse_args, registrator_args], ids=["proxy", "registrator"])
def test_both_agents_take_the_consul_connection_from_flags_and_environment(
        parse: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    flags = ["--consul=https://c:8501", "--consul-token=t", "--consul-cacert=/ca.pem",
             "--consul-client-cert=/cert.pem", "--consul-client-key=/key.pem"]
    expected = ("https://c:8501", "t", "/ca.pem", "/cert.pem", "/key.pem")
    assert tuple(getattr(parse(flags), name) for name in CONSUL_NAMES) == expected
    for name, value in zip(("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_CACERT", "CONSUL_CLIENT_CERT",
                            "CONSUL_CLIENT_KEY"), expected):
        monkeypatch.setenv(name, value)
    assert tuple(getattr(parse([]), name) for name in CONSUL_NAMES) == expected
    for name in ("CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_CACERT"):
        monkeypatch.setenv(name, "")  # empty means unset, as for Consul's CLI
    args = parse([])
    assert (args.consul, args.consul_token, args.consul_cacert) == ("http://127.0.0.1:8500", None, None)


def test_the_consul_connection_is_declared_once_for_both_agents() -> None:
    for table in (PROXY, REGISTRATOR):
        assert all(table[setting.name] is setting for setting in CONSUL_CONNECTION)


def test_proxy_defaults_are_haproxys_defaults_where_they_correspond() -> None:
    args = proxy.parse_args([])
    assert args.stats_port == HaproxySettings().stats_port
    assert haproxy_settings(args) == HaproxySettings(spare_backends=20, log_stdout=True)
    assert haproxy_settings(proxy.parse_args(["--trusted-networks=10.0.0.0/8, 192.168.0.0/16",
                                              "--stats-user=", "--no-access-log"])) == HaproxySettings(
        spare_backends=20, trusted_networks=("10.0.0.0/8", "192.168.0.0/16"))


def test_proxy_environment_is_read_when_the_command_line_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOPROXY_STATS_USER", "admin")
    monkeypatch.setenv("AUTOPROXY_STATS_PASSWORD", "secret")
    monkeypatch.setenv("HAPROXY_DOMAIN", "example.com:test")
    args = proxy.parse_args([])
    assert (args.stats_user, args.stats_password, args.domains) == ("admin", "secret", "example.com:test")
    assert proxy.parse_args(["--stats-user=root"]).stats_user == "root"


@pytest.mark.parametrize(("argv", "named"), [
    (["--debounce=-1"], "argument --debounce: must be at least 0"),
    (["--maxconn=many"], "argument --maxconn: must be an integer, got 'many'"),
    (["--rename-after=soon"], "argument --rename-after: must be a number"),
    (["--access-log-format=xml"], "argument --access-log-format: invalid choice"),
    (["--consul-ui-access=all"], "argument --consul-ui-access: invalid choice"),
])
def test_the_proxy_refuses_a_bad_value_naming_its_option(
        argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        proxy.parse_args(argv)
    assert stopped.value.code == 2
    assert named in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--check-interval=2x"], "invalid --check-interval '2x'"),
    (["--timeout-http-keep-alive=1q"], "invalid --timeout-http-keep-alive '1q'"),
    (["--http-maxconn=5000"], "--http-maxconn (at most --maxconn) must be an integer 1-4096, got '5000'"),
    (["--stats-port=80"], "--http-port and --stats-port must differ"),
    (["--stats-user=admin"], "--stats-user and --stats-password must be set together"),
    (["--check-fall=0"], "--check-fall must be an integer 1-1000, got '0'"),
    (["--trusted-networks=10.0.0.0/33"], "--trusted-networks: '10.0.0.0/33' is not a network"),
    (["--consul-ui-access=full"], "--consul-ui-access 'full' lets anyone write to Consul: it needs --consul-ui-user"),
    (["--consul-ui-service=a;b"], "invalid --consul-ui-service 'a;b'"),
])
def test_haproxys_checks_name_the_agents_options(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        render_haproxy_config({"backends": {}, "hosts": {}}, haproxy_settings(proxy.parse_args(argv)))
    assert message in settings_error(refused.value)


def test_the_proxy_agent_stops_on_bad_settings_before_it_starts_anything(caplog: pytest.LogCaptureFixture) -> None:
    assert proxy.main(["--check-interval=2x", "--haproxy=/nonexistent/haproxy"]) == 2
    assert "invalid proxy settings: invalid --check-interval '2x'" in caplog.text


def test_the_proxy_agent_checks_its_settings_alone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert proxy.main(["--check-settings", "--haproxy=/nonexistent/haproxy", "--consul=http://127.0.0.1:1"]) == 0
    assert "the proxy settings are valid" in caplog.text
    assert proxy.main(["--check-settings", "--maxconn=10", "--http-maxconn=11"]) == 2
    assert "--http-maxconn (at most --maxconn)" in caplog.text


def test_refused_passwords_are_not_shown(caplog: pytest.LogCaptureFixture) -> None:
    assert proxy.main(["--check-settings", "--stats-user=admin", "--stats-password=bad word"]) == 2
    assert "--stats-password" in caplog.text and "bad word" not in caplog.text and "(hidden)" in caplog.text


def test_a_setting_is_declared_once() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        by_name((Setting("a"), Setting("a")))
    with pytest.raises(ValueError, match="declared twice"):
        by_name((Setting("a", aliases=("-x",)), Setting("b", flag="-x")))
    with pytest.raises(ValueError, match="kind"):
        Setting("a", kind="duration")
    with pytest.raises(ValueError, match="separator"):
        Setting("a", kind="list")
    with pytest.raises(ValueError, match="repeatable"):
        Setting("a", repeatable=True)


def test_a_repeatable_list_collects_its_texts_and_replaces_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    setting = Setting("items", kind="list", separator=",", repeatable=True, flag="--item", env="TEST_ITEMS",
                      help="items")
    monkeypatch.delenv("TEST_ITEMS", raising=False)
    assert build_parser("p", None, (setting,)).parse_args([]).items is None
    assert build_parser("p", None, (setting,)).parse_args(["--item=a,b", "--item=c"]).items == ["a,b", "c"]
    monkeypatch.setenv("TEST_ITEMS", "x,y")
    assert build_parser("p", None, (setting,)).parse_args([]).items == ["x,y"]
    assert build_parser("p", None, (setting,)).parse_args(["--item=a", "--item=b"]).items == ["a", "b"], \
        "the option replaces the environment's value instead of adding to it"


@pytest.mark.parametrize("settings", [PROXY_SETTINGS, REGISTRATOR_SETTINGS], ids=["proxy", "registrator"])
def test_the_parser_shows_every_setting_with_its_help(settings: tuple[Setting, ...]) -> None:
    text = build_parser("p", None, settings).format_help()
    missing = [setting.option for setting in settings if setting.option not in text or not setting.help]
    assert not missing, f"settings missing from --help, or without help: {missing}"
    assert all(alias in text for setting in settings for alias in setting.aliases)


# ---- Ansible's declarations of the same settings
def _expected_default(setting: Setting, ansible_default: Any) -> Any:
    """The setting's default in the Ansible option's terms (a list for a list kind, "" or None for none)."""
    default = setting.default
    if setting.kind == "list":
        return split_escaped(default or "", setting.separator or ",", strip=True)
    if default is None and ansible_default in ("", None):
        return ansible_default
    return default


def _disagreements(setting: Setting, spec: dict[str, Any], compare_default: bool) -> list[str]:
    found = []
    if spec.get("type", "str") not in ANSIBLE_TYPES[setting.kind]:
        found.append(f"type {spec.get('type', 'str')} for a {setting.kind}")
    if setting.kind == "list" and spec.get("elements") != "str":
        found.append("list elements are not str")
    if sorted(spec.get("choices") or ()) != sorted(setting.choices or ()):
        found.append(f"choices {spec.get('choices')} != {setting.choices}")
    if bool(spec.get("no_log")) != setting.secret:
        found.append(f"no_log {spec.get('no_log')} for secret={setting.secret}")
    if compare_default and spec.get("default") != _expected_default(setting, spec.get("default")):
        found.append(f"default {spec.get('default')!r} != {setting.default!r}")
    return found


# haproxy_config module option -> proxy setting. The module renders files for any HAProxy, so some
# of its defaults differ from the agent's on purpose (it logs nothing by default).
MODULE_NAMES = {
    "url": "consul", "token": "consul_token", "ca_path": "consul_cacert", "domains": "domains",
    "http_port": "http_port", "stats_port": "stats_port", "stats_user": "stats_user",
    "stats_password": "stats_password", "check_interval": "check_interval", "runtime_socket": "runtime_socket",
    "access_log": "access_log", "access_log_format": "access_log_format", "maxconn": "maxconn",
    "http_maxconn": "http_maxconn", "stats_maxconn": "stats_maxconn", "trusted_networks": "trusted_networks",
    "consul_ui_service": "consul_ui_service", "consul_ui_access": "consul_ui_access",
    "consul_ui_user": "consul_ui_user", "consul_ui_password": "consul_ui_password",
    "master_socket": "master_socket", "haproxy_binary": "haproxy",
}
MODULE_ONLY = {"path", "instances", "validate", "validate_certs", "timeout", "container", "backup", "reload",
               "reload_signal", "timeouts"}
MODULE_OWN_DEFAULTS = {"access_log"}


def test_the_haproxy_config_module_agrees_with_the_proxy_settings() -> None:
    assert set(ARGUMENT_SPEC) == set(MODULE_NAMES) | MODULE_ONLY, "a module option is neither mapped nor module-only"
    problems = {}
    for option, name in MODULE_NAMES.items():
        found = _disagreements(PROXY[name], ARGUMENT_SPEC[option], option not in MODULE_OWN_DEFAULTS)
        if found:
            problems[option] = found
    for timeout, spec in ARGUMENT_SPEC["timeouts"]["options"].items():
        found = _disagreements(PROXY["timeout_" + timeout], spec, True)
        if found:
            problems["timeouts." + timeout] = found
    timeouts = {name[len("timeout_"):] for name in PROXY if name.startswith("timeout_")}
    assert set(ARGUMENT_SPEC["timeouts"]["options"]) == timeouts
    assert not problems, problems


def _role_options(role: str) -> dict[str, dict[str, Any]]:
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["argument_specs"]["main"]["options"]


# Per role: variables named otherwise than <prefix><setting>, the role's own variables (the
# container around the agent), the agent settings the role fixes or leaves alone, and the
# variables whose default is the role's on purpose (Consul as seen from a container, facts).
ROLES = {
    "proxy": {
        "renamed": {"proxy_consul_url": "consul"},
        "role_only": {"proxy_prefix", "proxy_network", "proxy_container_name", "proxy_network_aliases",
                      "proxy_http_host_ip", "proxy_http_host_port", "proxy_stats_service_name",
                      "proxy_consul_api_url", "proxy_log_level", "proxy_cpu_shares"},
        "agent_only": {"http_port", "config_dir", "master_socket", "runtime_socket", "haproxy", "wait",
                       "check_settings"},
        # proxy_local_addresses defaults to the host's ansible_host (a fact), the agent to $AUTOPROXY_LOCAL_ADDRESSES.
        "own_defaults": {"proxy_consul_url", "proxy_local_addresses"},
        "settings": PROXY,
    },
    "registrator": {
        "renamed": {"registrator_consul_url": "consul", "registrator_ip": "host_ip",
                    "registrator_address_network": "network", "registrator_use_ip_from_label": "ip_from_label"},
        # registrator_mode (internal/host) sets --internal.
        "role_only": {"registrator_prefix", "registrator_network", "registrator_container_name", "registrator_mode",
                      "registrator_docker_socket", "registrator_log_level", "registrator_cpu_shares"},
        "agent_only": {"registry_uri", "internal", "ttl", "ttl_refresh"},
        # registrator_ip defaults to a fact in host mode (its spec's default describes that).
        "own_defaults": {"registrator_consul_url", "registrator_address_network", "registrator_hostname",
                         "registrator_ip"},
        "settings": REGISTRATOR,
    },
}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_roles_argument_specs_agree_with_the_agents_settings(role: str) -> None:
    plan = ROLES[role]
    prefix = role + "_"
    options = _role_options(role)
    mapped = {option: plan["renamed"].get(option, option[len(prefix):]) for option in options
              if option not in plan["role_only"]}
    unknown = sorted(option for option, name in mapped.items() if name not in plan["settings"])
    assert not unknown, f"role {role}: {unknown} are no agent setting (map them or list them as role-only)"
    left_out = sorted(set(plan["settings"]) - set(mapped.values()) - plan["agent_only"])
    assert not left_out, f"role {role}: agent settings {left_out} have no role variable (add one or list them)"
    problems = {option: found for option, name in mapped.items()
                if (found := _disagreements(plan["settings"][name], options[option],
                                            option not in plan["own_defaults"]))}
    assert not problems, f"role {role}: {problems}"


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_roles_pass_only_flags_their_agent_declares(role: str) -> None:
    text = ""
    for part in ("tasks", "vars"):
        path = os.path.join(ROOT, "roles", role, part, "main.yml")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                text += handle.read()
    spellings = set()
    for setting in ROLES[role]["settings"].values():
        spellings.add(setting.option)
        if setting.negatable:
            spellings.add("--no-" + setting.option[2:])
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))
    assert used, f"role {role}: no flags found in its tasks"
    assert not used - spellings, f"role {role}: flags the agent does not declare: {sorted(used - spellings)}"
