# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Applying a routing-table change to a running HAProxy through its Runtime API, without a reload.

``plan_changes()`` is pure: from what HAProxy runs now (a RunningState) and the wanted routing
table it gives the Runtime API steps, or the reason only a reload can get there. ``RuntimeApi``
sends the steps over the admin socket. What HAProxy 2.6-3.0 cannot do at runtime, and so what
needs a reload: create a backend (new services take a pre-declared spare backend instead, as
long as one is left and the service uses the default balance without stickiness), change a
backend's ``balance`` or cookie stickiness, add a server by host name, and (2.6 only) add a
server with a ``cookie``.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_apply import (
    CliSession,
    HaproxyError,
    cli_command,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._haproxy_config import (
    HaproxySettings,
    server_arguments,
    spare_backend_names,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._options import (
    ROUTING_OPTIONS,
    RoutingOption,
    Scope,
    options_of,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import is_ip_literal

# Every word sent to the CLI was validated by the routing rules already; this is the last
# guard against ';' (command separator) or a newline reaching the socket.
_SAFE_WORD_RE = re.compile(r"[A-Za-z0-9_.:\[\]/,-]+\Z")
DEFAULT_WEIGHT = ROUTING_OPTIONS["weight"].haproxy.runtime_unset


class RuntimeApiError(Exception):
    """HAProxy refused a Runtime API command; a reload is the way out."""


# ---- the steps of a plan: one class per kind of Runtime API change


@dataclass(frozen=True)
class AddServer:
    """Add ``server`` (a routing table server) to ``proxy``, with its backend's ``options``."""

    proxy: str
    server: Mapping[str, Any]
    options: Mapping[str, Any]
    kind: ClassVar[str] = "add_server"


@dataclass(frozen=True)
class SetAddress:
    """Move a running server to another address and port."""

    proxy: str
    server: str
    address: str
    port: int
    kind: ClassVar[str] = "set_addr"


@dataclass(frozen=True)
class SetOption:
    """Change a routing option a running server can change (see RoutingOption.runtime)."""

    proxy: str
    server: str
    option: str
    value: Any

    @property
    def kind(self) -> str:
        return f"set_{self.option}"


@dataclass(frozen=True)
class RemoveServer:
    """Take a server out of service and delete it once it has no connection left."""

    proxy: str
    server: str
    kind: ClassVar[str] = "remove_server"


@dataclass(frozen=True)
class MapAdd:
    """Route a new host to a proxy."""

    host: str
    proxy: str
    kind: ClassVar[str] = "map_add"


@dataclass(frozen=True)
class MapSet:
    """Route a known host to another proxy."""

    host: str
    proxy: str
    kind: ClassVar[str] = "map_set"


@dataclass(frozen=True)
class MapDel:
    """Stop routing a host."""

    host: str
    kind: ClassVar[str] = "map_del"


Step = Union[AddServer, SetAddress, SetOption, RemoveServer, MapAdd, MapSet, MapDel]


@dataclass
class RunningState:
    """What the running HAProxy routes: logical backend -> the proxy that serves it.

    A backend created since the last reload runs under a spare's name; a reload renders every
    backend under its own name again.
    """

    backends: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: dict[str, str] = field(default_factory=dict)
    spares: list[str] = field(default_factory=list)

    @classmethod
    def from_table(cls, table: Mapping[str, Any], settings: HaproxySettings) -> RunningState:
        backends = {name: _running_backend(name, backend) for name, backend in table["backends"].items()}
        return cls(backends, dict(table["hosts"]), spare_backend_names(settings))

    def proxy(self, backend: str) -> str:
        return self.backends[backend]["proxy"]


def _running_backend(proxy: str, backend: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "proxy": proxy,
        "options": dict(backend.get("options", {})),
        "servers": {server["name"]: dict(server) for server in backend["servers"]},
    }


@dataclass
class Plan:
    """Runtime API steps that take HAProxy from one state to the next, or why it must reload."""

    steps: list[Step]
    state: RunningState
    reload_reason: str | None = None
    # The reload is due because new backends outnumber the spare ones declared.
    out_of_spares: bool = False


def _reload_only(scope: Scope) -> list[RoutingOption]:
    return [option for option in options_of(scope) if not option.runtime]


def _runtime(scope: Scope) -> list[RoutingOption]:
    return [option for option in options_of(scope) if option.runtime]


def _structure(options: Mapping[str, Any]) -> tuple[Any, ...]:
    """The backend options only a reload can change."""
    return tuple(options.get(option.name, option.default) for option in _reload_only("backend"))


def _unset(option: RoutingOption, values: Mapping[str, Any]) -> Any:
    """An option's value as the Runtime API sets it: the value, or what it sends for none."""
    return values.get(option.name, option.haproxy.runtime_unset)


def _server_steps(
    proxy: str, old: Mapping[str, Any], new: Mapping[str, Any], options: Mapping[str, Any]
) -> tuple[list[Step], list[Step], str | None]:
    """(steps, removals, reason) for one backend's servers."""
    steps: list[Step] = []
    removals: list[Step] = [RemoveServer(proxy, name) for name in sorted(set(old) - set(new))]
    for name in sorted(new):
        server = new[name]
        moved = name not in old or old[name]["address"] != server["address"]
        if moved and not is_ip_literal(server["address"]):
            return [], [], f"server {name} has a host name address, which only a reload resolves"
        if name not in old:
            steps.append(AddServer(proxy, server, dict(options)))
            continue
        before = old[name]
        for option in _reload_only("server"):
            if before.get(option.name) != server.get(option.name):
                return [], [], f"server {name} changes {option.name}, which only a reload sets"
        if (before["address"], before["port"]) != (server["address"], server["port"]):
            steps.append(SetAddress(proxy, name, server["address"], server["port"]))
        for option in _runtime("server"):
            if _unset(option, before) != _unset(option, server):
                steps.append(SetOption(proxy, name, option.name, _unset(option, server)))
    return steps, removals, None


def plan_changes(state: RunningState, table: Mapping[str, Any]) -> Plan:
    """The Runtime API steps from ``state`` to ``table``, or a Plan with a reload_reason.

    Order matters for requests in flight: servers are added before any host points at them,
    and hosts stop pointing at servers before those are removed.
    """
    # Only the containers below are changed, each replaced or given new keys, never a server's
    # dict: one level of copying is enough (a deep copy of every server cost most of a plan).
    new_state = RunningState({name: dict(backend) for name, backend in state.backends.items()}, dict(state.hosts),
                             list(state.spares))
    adds: list[Step] = []
    removals: list[Step] = []
    structural = [option.name for option in _reload_only("backend")]
    for name in sorted(set(state.backends) - set(table["backends"])):
        gone = new_state.backends.pop(name)
        removals += [RemoveServer(gone["proxy"], server) for server in sorted(gone["servers"])]
    for name in sorted(table["backends"]):
        backend = table["backends"][name]
        options = dict(backend.get("options", {}))
        running = new_state.backends.get(name)
        if running is None:
            if _structure(options) != _structure({}):
                return Plan([], state, f"new backend {name} has {'/'.join(structural)} options")
            if not new_state.spares:
                return Plan([], state, f"new backend {name}: no spare backend left", out_of_spares=True)
            running = new_state.backends[name] = _running_backend(new_state.spares.pop(0), {"servers": []})
        elif _structure(running["options"]) != _structure(options):
            return Plan([], state, f"backend {name} changes {' or '.join(structural)}")
        wanted = {server["name"]: dict(server) for server in backend["servers"]}
        steps, gone_servers, reason = _server_steps(running["proxy"], running["servers"], wanted, options)
        if reason:
            return Plan([], state, f"backend {name}: {reason}")
        for option in _runtime("backend"):
            if _unset(option, running["options"]) != _unset(option, options):
                steps += [SetOption(running["proxy"], server, option.name, _unset(option, options))
                          for server in sorted(set(running["servers"]) & set(wanted))]
        adds += steps
        removals += gone_servers
        running["options"], running["servers"] = options, wanted
    maps = _map_steps(state, new_state, table["hosts"])
    new_state.hosts = dict(table["hosts"])
    return Plan(adds + maps + removals, new_state)


def _map_steps(old: RunningState, new: RunningState, hosts: Mapping[str, str]) -> list[Step]:
    steps: list[Step] = []
    for host in sorted(hosts):
        proxy = new.proxy(hosts[host])
        if host not in old.hosts:
            steps.append(MapAdd(host, proxy))
        elif old.hosts[host] not in old.backends or old.proxy(old.hosts[host]) != proxy:
            steps.append(MapSet(host, proxy))
    steps += [MapDel(host) for host in sorted(set(old.hosts) - set(hosts))]
    return steps


def _words(*words: Any) -> str:
    text = [str(word) for word in words]
    for word in text:
        if _SAFE_WORD_RE.match(word) is None:
            raise RuntimeApiError(f"refusing to send unsafe word {word!r} to the Runtime API")
    return " ".join(text)


def send_command(socket_path: str, command: str, timeout: float = 10.0) -> str:
    """One command on an HAProxy CLI socket (runtime or master); its answer."""
    try:
        return cli_command(socket_path, command, timeout).strip()
    except HaproxyError as exc:
        raise RuntimeApiError(str(exc)) from exc


class RuntimeApi:
    """Executes plan steps on the admin socket; removes servers once they are idle.

    A removed server goes to maintenance at once (no new request reaches it) and is deleted when
    HAProxy agrees it has no connection left. ``retry_removals()`` tries again with a backoff per
    server (0.1 s doubling up to 2 s) until ``drain_timeout``, then shuts its sessions down once.
    """

    def __init__(self, socket_path: str, settings: HaproxySettings, drain_timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.settings = settings
        self.map_name = settings.map_file
        self.drain_timeout = drain_timeout
        self.draining: dict[tuple[str, str], _Drain] = {}
        self.session: CliSession | None = None

    def command(self, *words: Any) -> str:
        """One command; on the connection of the batch() it runs in, else on a connection of its own."""
        text = _words(*words)
        if self.session is None:
            return send_command(self.socket_path, text)
        try:
            return self.session.command(text)
        except HaproxyError as exc:
            raise RuntimeApiError(str(exc)) from exc

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Commands sent inside share one connection (CliSession): one per update, not per command."""
        if self.session is not None:
            yield
            return
        try:
            with CliSession(self.socket_path) as self.session:
                yield
        except HaproxyError as exc:
            raise RuntimeApiError(str(exc)) from exc
        finally:
            self.session = None

    def expect(self, answer_ok: Callable[[str], bool], *words: Any) -> str:
        answer = self.command(*words)
        if not answer_ok(answer):
            raise RuntimeApiError(f"{' '.join(map(str, words))}: {answer or '(no answer)'}")
        return answer

    def apply(self, steps: Iterable[Step]) -> None:
        """Send each step in order, on one connection; RuntimeApiError at the first one HAProxy refuses."""
        steps = list(steps)
        if not steps:
            return
        with self.batch():
            for step in steps:
                self.send(step)

    def send(self, step: Step) -> None:
        if isinstance(step, AddServer):
            self._add_server(step.proxy, step.server, step.options)
        elif isinstance(step, SetAddress):
            self._set_addr(step.proxy, step.server, step.address, step.port)
        elif isinstance(step, SetOption):
            self._set_option(step.proxy, step.server, ROUTING_OPTIONS[step.option], step.value)
        elif isinstance(step, RemoveServer):
            self._remove_server(step.proxy, step.server)
        elif isinstance(step, MapAdd):
            self.expect(_empty, "add", "map", self.map_name, step.host, step.proxy)
        elif isinstance(step, MapSet):
            self.expect(_empty, "set", "map", self.map_name, step.host, step.proxy)
        elif isinstance(step, MapDel):
            self.expect(lambda a: a == "" or "not found" in a.lower(), "del", "map", self.map_name, step.host)
        else:
            raise TypeError(f"not a Runtime API step: {step!r}")

    def forget(self) -> None:
        """After a reload nothing from before is running any more."""
        self.draining.clear()

    # ---- steps
    def _add_server(self, proxy: str, server: Mapping[str, Any], options: Mapping[str, Any]) -> None:
        name = server["name"]
        if self.draining.pop((proxy, name), None) is not None and not self._try_delete(proxy, name):
            # Still there in maintenance with connections: bring it back instead of adding a
            # second server of that name.
            fixed = [option.name for option in _reload_only("server") if option.name in server]
            if fixed:
                raise RuntimeApiError(f"server {proxy}/{name} still drains and {', '.join(fixed)} needs a reload")
            self._set_addr(proxy, name, server["address"], server["port"])
            for option in _runtime("server"):
                self._set_option(proxy, name, option, _unset(option, server))
            for option in _runtime("backend"):
                self._set_option(proxy, name, option, _unset(option, options))
        else:
            arguments = server_arguments(server, options, self.settings).split()
            self.expect(lambda a: "New server registered" in a, "add", "server", f"{proxy}/{name}", *arguments)
            self.expect(_empty, "enable", "health", f"{proxy}/{name}")
        self.expect(_empty, "set", "server", f"{proxy}/{name}", "state", "ready")

    def _set_addr(self, proxy: str, name: str, address: str, port: int) -> None:
        """Move a server, and start its health afresh at the new address.

        HAProxy keeps a server's check health across ``set server addr``: a server its checks
        took DOWN at the old address (the container behind it stopped) stays DOWN, answering
        503, until a check of the new address passes, up to a whole check interval later; and
        a check already under way to the old address still counts against it. The table only
        moves a server to an address whose Consul checks pass, so it is taken as up, as a new
        server is, with the full ``fall`` count to lose before HAProxy's own checks take it out.
        """
        target = f"{proxy}/{name}"
        answer = self.expect(lambda a: "changed" in a or "no need" in a or a == "", "set", "server", target,
                             "addr", address, "port", port)
        if "changed" in answer:
            self.expect(_empty, "set", "server", target, "health", "up")

    def _set_option(self, proxy: str, name: str, option: RoutingOption, value: Any) -> None:
        words = option.haproxy.runtime_words
        if words is None:
            raise RuntimeApiError(f"{option.name} of {proxy}/{name} cannot change without a reload")
        self.expect(_empty, *words(f"{proxy}/{name}", value))

    def _remove_server(self, proxy: str, name: str) -> None:
        self.expect(_empty, "set", "server", f"{proxy}/{name}", "state", "maint")
        self.draining[(proxy, name)] = _Drain(time.monotonic() + self.drain_timeout)
        self._try_delete(proxy, name)

    # ---- deferred deletion
    def _try_delete(self, proxy: str, name: str) -> bool:
        answer = self.command("del", "server", f"{proxy}/{name}")
        if "Server deleted" in answer or "No such server" in answer:
            self.draining.pop((proxy, name), None)
            return True
        return False

    def retry_removals(self) -> int:
        """Delete the draining servers that became idle; returns how many are still draining."""
        now = time.monotonic()
        due = [(key, drain) for key, drain in self.draining.items() if now >= drain.next_try]
        if not due:
            return len(self.draining)
        with self.batch():
            for (proxy, name), drain in due:
                self._retry_removal(proxy, name, drain, now)
        return len(self.draining)

    def _retry_removal(self, proxy: str, name: str, drain: _Drain, now: float) -> None:
        if now >= drain.deadline and not drain.shut_down:
            self.command("shutdown", "sessions", "server", f"{proxy}/{name}")
            drain.shut_down = True
        if not self._try_delete(proxy, name):
            drain.delay = min(drain.delay * 2, _DRAIN_RETRY_CAP)
            # The deadline is kept: sessions are shut down on time, not at the next backoff step.
            drain.next_try = now + drain.delay if drain.shut_down else min(now + drain.delay, drain.deadline)


_DRAIN_RETRY_FIRST = 0.1
_DRAIN_RETRY_CAP = 2.0


class _Drain:
    """A removed server that still has connections: when to give up waiting, when to ask again."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.delay = _DRAIN_RETRY_FIRST
        self.next_try = time.monotonic() + self.delay
        self.shut_down = False


def _empty(answer: str) -> bool:
    return answer == ""
