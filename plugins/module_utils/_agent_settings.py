# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One declaration per agent setting: its flag, environment variable, type, default and help.

PRIVATE to the collection. Plain Python (the agents run without Ansible). Each agent's command
line is built from its table (_proxy_settings.PROXY_SETTINGS, _registrator_settings.
REGISTRATOR_SETTINGS) by build_parser(); the haproxy_config module's argument spec and the roles'
meta/argument_specs.yml are checked against the tables by a unit test
(tests/unit/plugins/module_utils/test_agent_settings.py). The Consul connection options both
agents take are declared once, in CONSUL_CONNECTION.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.autoproxy.stack.plugins.module_utils._consul import DEFAULT_URL, ConsulClient
from ansible_collections.autoproxy.stack.plugins.module_utils._text import show

KINDS = ("str", "int", "float", "bool", "list")


@dataclass(frozen=True)
class Setting:
    """One option of an agent.

    ``name`` is the parsed attribute (argparse ``dest``); the flag is ``--`` + name with ``-``
    unless ``flag`` says otherwise. ``kind`` is str, int, float, bool (a switch) or list (one
    argument whose items ``separator`` splits; the attribute keeps the text; with ``repeatable`` the
    option may be given any number of times and the attribute is the list of its texts, or None). A bool whose flag
    starts with ``--no-`` turns the setting off; with ``negatable`` both ``--x`` and ``--no-x``
    exist; else the flag turns it on. ``env`` names an environment variable that, set and not
    empty, replaces ``default`` (read when the command line is parsed, as is ``default_factory``); for
    a repeatable list, the variable's text is the one item of the list the option, when given, replaces.
    ``minimum`` bounds an int or float; ``secret`` marks passwords and tokens.
    """

    name: str
    kind: str = "str"
    default: Any = None
    help: str | None = None
    env: str | None = None
    choices: tuple[str, ...] | None = None
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    separator: str | None = None
    negatable: bool = False
    minimum: float | None = None
    secret: bool = False
    positional: bool = False
    repeatable: bool = False
    default_factory: Callable[[], Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.name}: kind must be one of {', '.join(KINDS)}, got {show(self.kind)}")
        if (self.kind == "list") != (self.separator is not None):
            raise ValueError(f"setting {self.name}: a separator goes with kind list, and only with it")
        if self.repeatable and (self.kind != "list" or self.positional):
            raise ValueError(f"setting {self.name}: only a list option can be repeatable")

    @property
    def option(self) -> str:
        """The spelling shown in messages: the flag, or the positional argument's name."""
        if self.positional:
            return self.name
        return self.flag or "--" + self.name.replace("_", "-")

    def current_default(self) -> Any:
        """The default as it stands now: the environment variable's value, else the declared default."""
        if self.env:
            value = os.environ.get(self.env)
            if value not in (None, ""):
                return value
        return self.default_factory() if self.default_factory else self.default


def _converter(setting: Setting) -> Callable[[str], Any]:
    """argparse's ``type``: the kind's conversion and ``minimum``, failing with a message argparse shows
    after the option's name (``argument --debounce: ...``)."""
    base: Callable[[str], Any] = {"int": int, "float": float}.get(setting.kind, str)
    word = {"int": "an integer", "float": "a number"}.get(setting.kind, "text")

    def convert(text: str) -> Any:
        try:
            value = base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {word}, got {show(text)}") from None
        if setting.minimum is not None and value < setting.minimum:
            raise argparse.ArgumentTypeError(f"must be at least {setting.minimum:g}, got {show(text)}")
        return value

    return convert


class _AppendReplacingDefault(argparse.Action):
    """``action="append"`` whose first use replaces the default list instead of adding to it (so an
    environment variable's value applies only when the option is absent)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest, None)
        items = [] if current is None or current is self.default else list(current)
        setattr(namespace, self.dest, [*items, values])


def add_setting(parser: argparse.ArgumentParser, setting: Setting) -> None:
    """Add one setting to ``parser``, with its default as it stands now (environment included)."""
    kwargs: dict[str, Any] = {"default": setting.current_default(), "help": setting.help}
    if setting.positional:
        parser.add_argument(setting.name, nargs="?", **kwargs)
        return
    names = [setting.option, *setting.aliases]
    if setting.kind == "bool":
        if setting.negatable:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["action"] = "store_false" if setting.option.startswith("--no-") else "store_true"
    else:
        kwargs["type"] = _converter(setting)
        if setting.repeatable:
            kwargs["action"] = _AppendReplacingDefault
            kwargs["default"] = None if kwargs["default"] is None else [kwargs["default"]]
        if setting.choices:
            kwargs["choices"] = setting.choices
    parser.add_argument(*names, dest=setting.name, **kwargs)


def build_parser(prog: str, description: str | None, settings: Iterable[Setting], *,
                 allow_abbrev: bool = True) -> argparse.ArgumentParser:
    """An ArgumentParser for ``settings``; ``allow_abbrev=False`` refuses a prefix of a flag."""
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=allow_abbrev)
    for setting in settings:
        add_setting(parser, setting)
    return parser


def by_name(settings: Sequence[Setting]) -> Mapping[str, Setting]:
    """``{name: setting}``; ValueError when two settings share a name or a spelling."""
    table: dict[str, Setting] = {}
    spellings: set[str] = set()
    for setting in settings:
        taken = {setting.option, *setting.aliases} & spellings
        if setting.name in table or taken:
            raise ValueError(f"setting {setting.name} declared twice ({', '.join(sorted(taken)) or setting.name})")
        table[setting.name] = setting
        spellings |= {setting.option, *setting.aliases}
    return table


# The Consul connection, as Consul's own CLI reads it from the environment.
CONSUL_CONNECTION: tuple[Setting, ...] = (
    Setting("consul", default=DEFAULT_URL, env="CONSUL_HTTP_ADDR", help="Consul HTTP API URL"),
    Setting("consul_token", env="CONSUL_HTTP_TOKEN", secret=True, help="Consul ACL token"),
    Setting("consul_cacert", env="CONSUL_CACERT", help="CA file for an https Consul URL"),
    Setting("consul_client_cert", env="CONSUL_CLIENT_CERT", help="client certificate file for an https Consul URL"),
    Setting("consul_client_key", env="CONSUL_CLIENT_KEY", help="key file of that client certificate"),
)


def consul_client(args: argparse.Namespace) -> ConsulClient:
    """The ConsulClient the CONSUL_CONNECTION settings in ``args`` describe."""
    return ConsulClient(args.consul, token=args.consul_token, ca_path=args.consul_cacert,
                        client_cert=args.consul_client_cert, client_key=args.consul_client_key)
