# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The proxy agent's settings, declared once (see _agent_settings).

A setting that is also a HaproxySettings field takes its default from there (so the stats port,
say, is written once), unless the agent's default differs on purpose (spare backends, access
log). haproxy_settings() turns parsed settings into HaproxySettings; settings_error() rewrites a
ValueError of HaproxySettings' checks so that it names the agent's options.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any

from ansible_collections.autoproxy.stack.plugins.module_utils._agent_settings import (
    CONSUL_CONNECTION,
    Setting,
    by_name,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import HaproxySettings
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_frontend import (
    ACCESS_LOG_FORMATS,
    CONSUL_UI_ACCESS,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._text import show, split_escaped

_HAPROXY_DEFAULTS: dict[str, Any] = {field.name: field.default for field in dataclasses.fields(HaproxySettings)}
# Agent settings whose HaproxySettings field has another name.
HAPROXY_FIELDS: dict[str, str] = {"access_log": "log_stdout", "access_log_format": "log_format"}
TIMEOUTS = ("connect", "client", "server", "tunnel", "http_request", "http_keep_alive")


def _field(setting: str) -> str:
    return HAPROXY_FIELDS.get(setting, setting)


def _haproxy(name: str, **kwargs: Any) -> Setting:
    """A setting that is a HaproxySettings field, with that field's default unless ``default`` is given."""
    kwargs.setdefault("default", _HAPROXY_DEFAULTS[_field(name)])
    return Setting(name, **kwargs)


PROXY_SETTINGS: tuple[Setting, ...] = (
    *CONSUL_CONNECTION,
    Setting("domains", kind="list", separator=":", default="127.0.0.1.nip.io:test", env="HAPROXY_DOMAIN",
            help="':'-separated domains every host also answers under (the seed's HAPROXY_DOMAIN)"),
    _haproxy("http_port", kind="int", help="port of the HTTP frontend"),
    _haproxy("stats_port", kind="int", help="port of the stats page"),
    _haproxy("stats_user", env="AUTOPROXY_STATS_USER", help="user for the stats page's basic auth"),
    _haproxy("stats_password", env="AUTOPROXY_STATS_PASSWORD", secret=True,
             help="password for the stats page's basic auth"),
    Setting("config_dir", default="/etc/haproxy/autoproxy", help="directory of haproxy.cfg and hosts.map"),
    Setting("master_socket", default="/run/haproxy/master.sock", help="HAProxy's master CLI socket"),
    _haproxy("runtime_socket", help="HAProxy's Runtime API socket"),
    Setting("haproxy", default="haproxy", help="HAProxy binary"),
    Setting("debounce", kind="float", default=0.2, minimum=0,
            help="while catalog changes keep coming, seconds between updates (each takes every change since the "
                 "last); the first few after a quiet moment are applied at once"),
    _haproxy("check_interval", help="interval of HAProxy's own server checks"),
    _haproxy("check_fall", kind="int", help="failed checks before HAProxy takes a server out"),
    _haproxy("check_rise", kind="int", help="passed checks before HAProxy puts a server back"),
    _haproxy("spare_backends", kind="int", default=20,
             help="backends declared in advance so new services need no reload; doubled (up to 32 times) "
                  "by the reload that follows when new services use them all"),
    Setting("rename_after", kind="float", default=2.0, minimum=0,
            help="seconds of quiet after which one reload gives backends that run on spare slots their own names "
                 "(stats page, logs); 0 never reloads for that"),
    _haproxy("hard_stop_after", help="longest life of an old worker after a reload"),
    Setting("drain_timeout", kind="float", default=30.0,
            help="seconds a removed server may keep its connections before they are shut down"),
    Setting("confirm_after", kind="float", default=3.0, minimum=0,
            help="seconds before a second read may confirm that more than half of the services are gone"),
    Setting("fault_hold", kind="float", default=30.0, minimum=0,
            help="seconds after a Consul fault during which such a drop is never applied"),
    _haproxy("access_log", kind="bool", default=True, negatable=True,
             help="log every request to stdout (docker logs), one line each"),
    _haproxy("access_log_format", choices=tuple(sorted(ACCESS_LOG_FORMATS)),
             help="text (HAProxy's httplog fields plus the host) or json (one object per line)"),
    *(_haproxy(f"timeout_{name}", help=f"HAProxy's timeout {name.replace('_', '-')}") for name in TIMEOUTS),
    _haproxy("maxconn", kind="int", help="connections HAProxy holds at once (global maxconn)"),
    _haproxy("http_maxconn", kind="int", help="connections the HTTP frontend takes at once"),
    _haproxy("stats_maxconn", kind="int", help="connections the stats page takes at once"),
    _haproxy("trusted_networks", kind="list", separator=",", default="", env="AUTOPROXY_TRUSTED_NETWORKS",
             help="','-separated client networks (other proxies) whose X-Forwarded-* headers are kept"),
    _haproxy("consul_ui_service", help="the Consul UI's service; its hosts are guarded (empty: none)"),
    _haproxy("consul_ui_access", choices=CONSUL_UI_ACCESS,
             help="read_only: GET/HEAD to read endpoints only; full: everything, behind basic auth"),
    _haproxy("consul_ui_user", env="AUTOPROXY_CONSUL_UI_USER", help="user for basic auth on the Consul UI"),
    _haproxy("consul_ui_password", env="AUTOPROXY_CONSUL_UI_PASSWORD", secret=True,
             help="password for basic auth on the Consul UI"),
    Setting("local_addresses", kind="list", separator=",", repeatable=True, flag="--local-address",
            env="AUTOPROXY_LOCAL_ADDRESSES",
            help="an address of this host as its containers' registrations carry it (its fleet IP in host mode); "
                 "repeatable or ','-separated (default: $AUTOPROXY_LOCAL_ADDRESSES)"),
    Setting("local_weight", kind="int", default=0,
            help="servers at a local address get their weight times this, at most 256 (docs/RULES.md §18); 0: off"),
    Setting("wait", kind="int", default=55, help="blocking query wait, seconds"),
    Setting("check_settings", kind="bool", default=False,
            help="only check the settings: exit 0 if the agent can use them, else 2 with a message naming the option"),
)
PROXY = by_name(PROXY_SETTINGS)
# The settings HaproxySettings takes, by field name.
_TO_HAPROXY = {_field(setting.name): setting for setting in PROXY_SETTINGS if _field(setting.name) in _HAPROXY_DEFAULTS}


def haproxy_settings(args: argparse.Namespace) -> HaproxySettings:
    """The HaproxySettings that parsed proxy settings describe (unchecked: rendering checks them).

    A list setting becomes a tuple of its items; an empty optional one (user, password) None.
    """
    values: dict[str, Any] = {}
    for field, setting in _TO_HAPROXY.items():
        value = getattr(args, setting.name)
        if setting.separator is not None:
            value = tuple(split_escaped(value or "", setting.separator, strip=True))
        elif setting.default is None:
            value = value or None
        values[field] = value
    return HaproxySettings(**values)


def settings_error(exc: ValueError, args: argparse.Namespace | None = None) -> str:
    """A HaproxySettings check's message with its field names replaced by the agent's options, and
    the values of the secret settings in ``args`` (passwords) hidden."""
    def option(match: re.Match[str]) -> str:
        return _TO_HAPROXY[match.group(0)].option

    message = _FIELD_RE.sub(option, str(exc))
    for setting in PROXY_SETTINGS if args is not None else ():
        value = getattr(args, setting.name, None)
        if setting.secret and isinstance(value, str) and value:
            message = message.replace(show(value), "(hidden)").replace(value, "(hidden)")
    return message


_FIELD_RE = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, _TO_HAPROXY), key=len, reverse=True)) + r")\b")
