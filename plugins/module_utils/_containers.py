# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How a Docker container becomes Consul service registrations (gliderlabs/registrator v7 compatible).

``container_services(inspect, options)`` turns the body of Docker's ``GET /containers/{id}/json`` into
a list of bodies for Consul's ``PUT /v1/agent/service/register`` plus a list of human-readable warnings.
It never raises for bad container input: a bad key is dropped (or replaced by its default) with a
warning, a bad service is skipped with a warning, and the rest of the container still registers.

Keys come from environment variables and labels named ``SERVICE_<KEY>`` or ``SERVICE_<port>_<KEY>``
(a label wins over an env var, a port-specific key wins over the generic one), exactly as registrator
reads them.  The keys that are not registrator settings (name, id, tags, ignore, check_*) become
Consul service ``Meta``.

Where this deliberately differs from registrator:

* the address on a multi-network container is chosen deterministically (the ``autoproxy.network``
  label, then the ``network`` option, then the network of ``HostConfig.NetworkMode``, then the first
  network by name) instead of at random;
* tags keep their written order, are trimmed, de-duplicated, and empty ones are dropped;
* ``check_*`` keys are not copied into Meta (registrator#620), invalid Meta entries are dropped one
  by one instead of failing the whole registration, and ``autoproxy_*`` Meta keys are reserved for
  the owner/container markers this collection uses to clean up after itself;
* ``SERVICE_CHECK_TCP``/``_TLS_SKIP_VERIFY``/``_GRPC_USE_TLS`` treat ``false``/``0``/``no``/``off`` as off;
* ``SERVICE_CHECK_SCRIPT`` becomes ``Args: ["sh", "-c", cmd]`` (registrator's single-string form
  breaks on the first space).  Consul runs it only when the agent has ``enable_script_checks``
  (or ``enable_local_script_checks``) set, and then any container on the host can make the Consul
  agent run a command: set ``AgentOptions.script_checks=False`` to refuse them;
* ``SERVICE_CHECK_CMD`` needs the ``check-cmd`` helper of the old progrium/consul image, which no
  current Consul has: it is ignored with a warning;
* ``SERVICE_CHECK_TLS_SKIP_VERIFY`` also applies to https checks (registrator only used it for gRPC);
* IPv6 addresses are bracketed in check URLs and TCP/gRPC targets, and an address with a zone
  index (``fe80::1%eth0``) is refused: neither a check URL nor the proxy can use it;
* an image reference with a digest (``x/y@sha256:..``) gives the default name ``y``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from ansible_collections.autoproxy.stack.plugins.module_utils._addresses import host_port, parse_port
from ansible_collections.autoproxy.stack.plugins.module_utils._durations import parse_duration_ns
from ansible_collections.autoproxy.stack.plugins.module_utils._routing import is_ip_literal
from ansible_collections.autoproxy.stack.plugins.module_utils._text import clip, show, split_escaped

__all__ = ["NETWORK_LABEL", "AgentOptions", "container_name", "container_services", "service_keys"]

# A container label naming the network whose IP is registered; it wins over the agent's network option.
NETWORK_LABEL = "autoproxy.network"

_PREFIX = "SERVICE_"

# A duration value is copied into the registration, so it is bounded like the other keys.
_DURATION_MAX_CHARS = 64
_DURATION_HINT = "not a duration above zero like 10s, 500ms, 1m"

_META_KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_META_MAX_KEYS = 64
_META_MAX_VALUE = 512
# Characters of a container-given value quoted in a warning.
_SHOWN_CHARS = 80

# Letters, digits, '_', '-', '.' keep a name usable in Consul's HTTP paths and in the proxy's host
# names; anything else (spaces, '/', '?', control characters) would be refused or break lookups.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
# A service ID ends up in /v1/agent/service/deregister/<id>, so characters that change a URL path
# are refused.
_ID_BAD_RE = re.compile(r"[\s/?#%\x00-\x1f\x7f]")
_ASCII_DIGITS_RE = re.compile(r"[0-9]+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_HTTP_METHOD_RE = re.compile(r"[A-Z]{1,20}")
_HTTP_PATH_RE = re.compile(r"/[^\s\x00-\x1f\x7f]{0,2047}")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")

_FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_INITIAL_STATUSES = frozenset({"passing", "warning", "critical"})
_WILDCARD_HOST_IPS = frozenset({"", "0.0.0.0", "::"})
# Network modes that do not name a network in NetworkSettings.Networks.
_SPECIAL_NETWORK_MODES = frozenset({"", "default", "host", "none"})

_CHECK_KEYS = frozenset({
    "check_http", "check_http_method", "check_https", "check_https_method", "check_tcp", "check_ttl",
    "check_script", "check_cmd", "check_grpc", "check_grpc_use_tls", "check_tls_skip_verify",
    "check_interval", "check_timeout", "check_initial_status", "check_deregister_after",
})
_SETTING_KEYS = frozenset({"name", "id", "tags", "ignore"}) | _CHECK_KEYS
_RESERVED_META_PREFIXES = ("consul-", "autoproxy_")
# warn(key as written, its value, why it was dropped or ignored)
_KeyWarn = Callable[[str, str, str], None]
OWNER_META = "autoproxy_owner"
CONTAINER_META = "autoproxy_container"


@dataclass(frozen=True)
class AgentOptions:
    """What registrator took from its command line."""

    hostname: str                      # first part of every default service ID
    mode: str = "internal"             # "internal": container IP + exposed port; "host": host IP + published port
    host_ip: str | None = None         # registrator's -ip
    network: str | None = None         # preferred Docker network on multi-network containers
    explicit: bool = False             # registrator's -explicit
    ip_from_label: str | None = None   # registrator's -useIpFromLabel
    tags: tuple = ()                   # registrator's -tags: a list or a comma string, not a Go template
    owner: str = ""                    # written to Meta["autoproxy_owner"]
    default_check_interval: str = "10s"
    script_checks: bool = True         # False refuses SERVICE_CHECK_SCRIPT (a command run by the Consul agent)

    def __post_init__(self) -> None:
        tags = self.tags
        if isinstance(tags, str):
            # registrator's -tags is one comma-separated argument, split like SERVICE_TAGS.
            tags = split_escaped(tags, strip=True)
        # A tuple keeps the frozen dataclass hashable; a lone non-list is wrapped so validation names it.
        object.__setattr__(self, "tags", tuple(tags) if isinstance(tags, (list, tuple)) else (tags,))
        _validate_options(self)


def _validate_options(options: AgentOptions) -> None:
    if options.mode not in ("internal", "host"):
        raise ValueError(f"mode must be 'internal' or 'host', not {options.mode!r}")
    # The cleanup pattern <hostname>:<container>:<port> cannot be parsed back if the host name has a ':'.
    if not isinstance(options.hostname, str) or not options.hostname or _ID_BAD_RE.search(options.hostname) \
            or ":" in options.hostname:
        raise ValueError("hostname must be a non-empty string without ':', '/', spaces or control characters")
    host_ip = options.host_ip
    if host_ip is not None and not (
            is_ip_literal(host_ip) or isinstance(host_ip, str) and _HOSTNAME_RE.fullmatch(host_ip)):
        raise ValueError(f"host_ip must be an IP address or a host name, not {host_ip!r}")
    for field in ("network", "ip_from_label"):
        value = getattr(options, field)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{field} must be a non-empty string or None")
    for tag in options.tags:
        if not isinstance(tag, str) or not tag.strip() or _CONTROL_RE.search(tag):
            raise ValueError(f"tags must be non-empty strings without control characters, not {tag!r}")
    if not isinstance(options.owner, str) or len(options.owner) > _META_MAX_VALUE:
        raise ValueError(f"owner must be a string of at most {_META_MAX_VALUE} characters")
    if not _is_positive_duration(options.default_check_interval):
        raise ValueError("default_check_interval must be a duration above zero like 10s, "
                         f"not {options.default_check_interval!r}")


# --------------------------------------------------------------------------------------------
# small readers that never raise on odd inspect data


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _is_positive_duration(value: Any) -> bool:
    """A Go duration above zero. Consul refuses a zero interval or TTL; a zero or negative timeout
    or deregister delay would only mean "not set", so every check duration must be above zero."""
    if not isinstance(value, str) or len(value) > _DURATION_MAX_CHARS:
        return False
    nanoseconds = parse_duration_ns(value)
    return nanoseconds is not None and nanoseconds > 0


def _clip(text: str) -> str:
    """Text from a container, made safe for a one-line warning (container names keep their letters)."""
    return clip(text, _SHOWN_CHARS, keep_non_ascii=True)


def _show(value: str) -> str:
    return show(value, _SHOWN_CHARS, keep_non_ascii=True)


def _truthy(value: str) -> bool:
    value = value.strip().lower()
    return value != "" and value not in _FALSE_WORDS


def container_name(inspect: Any) -> str:
    """The container's name without Docker's leading '/' (its short ID if it has no name)."""
    name = _str(_dict(inspect).get("Name")).lstrip("/")
    return name or _str(_dict(inspect).get("Id"))[:12]


# --------------------------------------------------------------------------------------------
# SERVICE_* keys


def _raw_service_keys(inspect: Any) -> dict[str, tuple[str, str]]:
    """Lower-cased key after SERVICE_ -> (key as written, value); labels are read last so they win."""
    config = _dict(_dict(inspect).get("Config"))
    found: dict[str, tuple[str, str]] = {}
    for entry in _list(config.get("Env")):
        if isinstance(entry, str) and "=" in entry:
            key, value = entry.split("=", 1)
            _add_service_key(found, key, value)
    labels = _dict(config.get("Labels"))
    # Sorted so two labels that differ only in case resolve the same way every time.
    for key in sorted(k for k in labels if isinstance(k, str)):
        if isinstance(labels[key], str):
            _add_service_key(found, key, labels[key])
    return found


def _add_service_key(found: dict[str, tuple[str, str]], key: str, value: str) -> None:
    if key.startswith(_PREFIX) and len(key) > len(_PREFIX):
        found[key[len(_PREFIX):].lower()] = (key, value)


def service_keys(inspect: Any) -> dict[str, str]:
    """The container's SERVICE_* settings, env and labels merged (a label wins).

    Keys are what follows ``SERVICE_``, lower-cased as registrator does (``SERVICE_80_NAME`` -> ``80_name``).
    """
    return {key: value for key, (_raw, value) in _raw_service_keys(inspect).items()}


def _split_port_keys(
    keys: dict[str, tuple[str, str]], port_numbers: set[int], warn: _KeyWarn
) -> tuple[dict[str, tuple[str, str]], dict[int, dict[str, tuple[str, str]]]]:
    """Separate generic keys from SERVICE_<port>_<KEY> ones, warning about port keys that cannot apply."""
    generic: dict[str, tuple[str, str]] = {}
    per_port: dict[int, dict[str, tuple[str, str]]] = {}
    for key in sorted(keys):
        raw, value = keys[key]
        head, sep, rest = key.partition("_")
        if sep and _ASCII_DIGITS_RE.fullmatch(head) and rest:
            port = parse_port(head)
            if port is None:
                warn(raw, value, f"ignored: {_show(head)} is not a port number")
            elif port not in port_numbers:
                warn(raw, value, f"ignored: the container does not expose port {port}")
            else:
                per_port.setdefault(port, {})[rest] = (raw, value)
        elif sep and rest in _SETTING_KEYS:
            # Looks like SERVICE_<port>_NAME with a mistyped port; as Meta it would only confuse.
            warn(raw, value, f"ignored: {_show(head)} is not a port number")
        else:
            generic[key] = (raw, value)
    return generic, per_port


# --------------------------------------------------------------------------------------------
# ports and addresses


def _parse_port_key(key: str) -> tuple[int, str] | None:
    number, _sep, proto = key.partition("/")
    port = parse_port(number)
    proto = (proto or "tcp").lower()
    if port is None or not proto.isascii() or not proto.isalpha():
        return None
    return port, proto


def _container_ports(inspect: Any, warn_text: Callable[[str], None]) -> list[tuple[int, str]]:
    """Every (port, protocol) the container exposes or Docker reports, sorted."""
    config = _dict(_dict(inspect).get("Config"))
    settings = _dict(_dict(inspect).get("NetworkSettings"))
    ports = set()
    for key in list(_dict(config.get("ExposedPorts"))) + list(_dict(settings.get("Ports"))):
        parsed = _parse_port_key(key) if isinstance(key, str) else None
        if parsed is None:
            warn_text(f"port {_show(str(key))} ignored: not a port like 80/tcp")
        else:
            ports.add(parsed)
    return sorted(ports)


def _network_mode(inspect: Any) -> str:
    return _str(_dict(_dict(inspect).get("HostConfig")).get("NetworkMode"))


def _published_binding(inspect: Any, port: int, proto: str) -> tuple[int, str] | None:
    """The first host binding of a port: (host port, host IP), or None when it is not published."""
    bindings = _dict(_dict(_dict(inspect).get("NetworkSettings")).get("Ports")).get(f"{port}/{proto}")
    for binding in _list(bindings):
        published = parse_port(_str(_dict(binding).get("HostPort")))
        if published is not None:
            return published, _str(_dict(binding).get("HostIp"))
    return None


def _registrable_ports(
    inspect: Any, ports: list[tuple[int, str]], options: AgentOptions
) -> list[tuple[int, str, int, str | None]]:
    """(exposed port, protocol, registered port, host IP hint) for each port the mode can register."""
    if options.mode == "internal":
        return [(port, proto, port, None) for port, proto in ports]
    result: list[tuple[int, str, int, str | None]] = []
    for port, proto in ports:
        if _network_mode(inspect) == "host":
            # A host-networked container listens on the host itself, so its exposed port is the host port.
            result.append((port, proto, port, None))
            continue
        binding = _published_binding(inspect, port, proto)
        if binding is not None:
            result.append((port, proto, binding[0], binding[1]))
    return result


def _network_ip(network: Any) -> str:
    network = _dict(network)
    for key in ("IPAddress", "GlobalIPv6Address"):
        value = _str(network.get(key))
        if value and is_ip_literal(value):
            return value
    return ""


def _label_network(inspect: Any, networks: dict[Any, Any], warn_text: Callable[[str], None]) -> str:
    """The network named by the autoproxy.network label, or '' (with a warning when it cannot be used)."""
    labels = _dict(_dict(_dict(inspect).get("Config")).get("Labels"))
    wanted = _str(labels.get(NETWORK_LABEL)).strip()
    if wanted and not _network_ip(networks.get(wanted)):
        warn_text(f"label {NETWORK_LABEL}={_show(wanted)} ignored: the container has no IP on that network")
        return ""
    return wanted


def _container_ip(inspect: Any, options: AgentOptions, warn_text: Callable[[str], None] = lambda _text: None) -> str:
    """The container's own IP, chosen deterministically among its networks."""
    settings = _dict(_dict(inspect).get("NetworkSettings"))
    networks = _dict(settings.get("Networks"))
    mode = _network_mode(inspect)
    candidates = []
    label_network = _label_network(inspect, networks, warn_text)
    if label_network:
        candidates.append(label_network)
    if options.network:
        candidates.append(options.network)
    if mode not in _SPECIAL_NETWORK_MODES and not mode.startswith("container:"):
        candidates.append(mode)
    elif mode == "default":
        candidates.append("bridge")
    candidates.extend(sorted(k for k in networks if isinstance(k, str)))
    for name in candidates:
        ip = _network_ip(networks.get(name))
        if ip:
            return ip
    legacy = _str(settings.get("IPAddress"))
    return legacy if is_ip_literal(legacy) else ""


def _label_ip(inspect: Any, options: AgentOptions, warn_text: Callable[[str], None]) -> str:
    """The address from the -useIpFromLabel label (a /NN suffix stripped), or '' when absent or bad."""
    if not options.ip_from_label:
        return ""
    labels = _dict(_dict(_dict(inspect).get("Config")).get("Labels"))
    value = _str(labels.get(options.ip_from_label)).strip()
    if not value:
        return ""
    address = value.split("/", 1)[0]
    if not is_ip_literal(address):
        warn_text(f"label {options.ip_from_label}={_show(value)} ignored: not an IP address")
        return ""
    return address


def _service_address(
    inspect: Any, options: AgentOptions, host_ip_hint: str | None, warn_text: Callable[[str], None]
) -> str | None:
    """The address to register, or None (with a warning) when none can be determined."""
    label_ip = _label_ip(inspect, options, warn_text)
    if label_ip:
        return label_ip
    mode = _network_mode(inspect)
    if mode == "host" or options.mode == "host":
        if options.host_ip:
            return options.host_ip
        if host_ip_hint and host_ip_hint not in _WILDCARD_HOST_IPS and is_ip_literal(host_ip_hint):
            return host_ip_hint
        warn_text("no address to register: set the agent's host IP (registrator's -ip)")
        return None
    if mode.startswith("container:"):
        # The address belongs to another container, which this pure function cannot inspect.
        warn_text(f"no address to register: network mode {_show(mode)} shares another container's network "
                  "(give the address in the agent's ip_from_label label)")
        return None
    ip = _container_ip(inspect, options, warn_text)
    if not ip:
        warn_text("no address to register: the container has no IP address on any network")
        return None
    return ip


# --------------------------------------------------------------------------------------------
# name, ID, tags, meta


def _default_name(inspect: Any) -> str:
    image = _str(_dict(_dict(inspect).get("Config")).get("Image"))
    base = image.rstrip("/").rsplit("/", 1)[-1]
    return base.split("@", 1)[0].split(":", 1)[0]


def _service_name(
    inspect: Any, keys: dict[str, tuple[str, str]], from_port: dict[str, tuple[str, str]], port: int,
    is_group: bool, options: AgentOptions, warn: _KeyWarn,
) -> str | None:
    """The service name, or None when the service must not be registered."""
    raw, value = keys.get("name", ("SERVICE_NAME", ""))
    if value == "":
        # Registrator treats an empty value as unset.
        if options.explicit:
            return None
        raw, value = "Config.Image", _str(_dict(_dict(inspect).get("Config")).get("Image"))
        name = _default_name(inspect)
    else:
        name = value.strip()
    if not name:
        warn(raw, value, f"gives no service name; port {port} not registered")
        return None
    if is_group and "name" not in from_port:
        name = f"{name}-{port}"
    if not _NAME_RE.fullmatch(name):
        warn(raw, value, f"gives an invalid service name (letters, digits, '_', '-', '.' only); "
             f"port {port} not registered")
        return None
    return name


def _service_id(
    inspect: Any, keys: dict[str, tuple[str, str]], port: int, proto: str, options: AgentOptions, warn: _KeyWarn
) -> str:
    default = f"{options.hostname}:{container_name(inspect)}:{port}"
    if proto != "tcp":
        default += ":" + proto
    raw, value = keys.get("id", ("SERVICE_ID", ""))
    if value == "":
        return default
    if not value.strip() or _ID_BAD_RE.search(value) or len(value) > 255:
        warn(raw, value, f"ignored: an ID must not have spaces, '/', '?', '#', '%'; using {default}")
        return default
    return value


def _service_tags(keys: dict[str, tuple[str, str]], proto: str, options: AgentOptions, warn: _KeyWarn) -> list[str]:
    raw, value = keys.get("tags", ("SERVICE_TAGS", ""))
    tags: list[str] = []
    # registrator's SERVICE_TAGS rule: split on ',', '\,' is a literal comma.
    for tag in split_escaped(value):
        tag = tag.strip()
        if not tag:
            continue
        if _CONTROL_RE.search(tag):
            warn(raw, tag, "tag dropped: it has control characters")
            continue
        tags.append(tag)
    tags.extend(options.tags)
    if proto != "tcp":
        tags.append(proto)
    # First occurrence wins so the written order is kept.
    return list(dict.fromkeys(tags))


def _meta_problem(key: str, value: str) -> str:
    if not _META_KEY_RE.fullmatch(key):
        return "Meta keys have 1-128 letters, digits, '_' or '-'"
    if key.startswith(_RESERVED_META_PREFIXES):
        return "Meta keys starting with consul- or autoproxy_ are reserved"
    if len(value) > _META_MAX_VALUE:
        return f"Meta values have at most {_META_MAX_VALUE} characters"
    return ""


def _service_meta(
    inspect: Any, keys: dict[str, tuple[str, str]], options: AgentOptions, warn: _KeyWarn
) -> dict[str, str]:
    meta: dict[str, str] = {}
    if options.owner:
        meta[OWNER_META] = options.owner
    meta[CONTAINER_META] = container_name(inspect)
    for key in sorted(keys):
        if key in _SETTING_KEYS or key.startswith("check_"):
            continue
        raw, value = keys[key]
        problem = _meta_problem(key, value)
        if not problem and len(meta) >= _META_MAX_KEYS:
            problem = f"Consul allows at most {_META_MAX_KEYS} Meta keys"
        if problem:
            warn(raw, value, "dropped: " + problem)
            continue
        meta[key] = value
    return meta


# --------------------------------------------------------------------------------------------
# health check


def _check_path(keys: dict[str, tuple[str, str]], key: str, warn: _KeyWarn) -> str | None:
    raw, value = keys[key]
    if not _HTTP_PATH_RE.fullmatch(value):
        warn(raw, value, "ignored: not an HTTP path like /health")
        return None
    return value


def _http_check(
    keys: dict[str, tuple[str, str]], kind: str, address: str, port: int, warn: _KeyWarn
) -> dict[str, Any] | None:
    path = _check_path(keys, "check_" + kind, warn)
    if path is None:
        return None
    check: dict[str, Any] = {"HTTP": f"{kind}://{host_port(address, port)}{path}"}
    method_key = f"check_{kind}_method"
    if keys.get(method_key, ("", ""))[1]:
        raw, value = keys[method_key]
        if _HTTP_METHOD_RE.fullmatch(value.strip().upper()):
            check["Method"] = value.strip().upper()
        else:
            warn(raw, value, "ignored: not an HTTP method like GET or HEAD")
    if kind == "https" and _truthy(keys.get("check_tls_skip_verify", ("", ""))[1]):
        check["TLSSkipVerify"] = True
    return check


def _script_check(
    keys: dict[str, tuple[str, str]], address: str, port: int, options: AgentOptions, warn: _KeyWarn
) -> dict[str, Any] | None:
    raw, value = keys["check_script"]
    if not options.script_checks:
        warn(raw, value, "ignored: script checks are disabled for this agent")
        return None
    command = value.replace("$SERVICE_IP", address).replace("$SERVICE_PORT", str(port))
    # Consul runs Args directly; sh -c keeps registrator's "one command line" meaning.
    return {"Args": ["sh", "-c", command]}


def _ttl_check(keys: dict[str, tuple[str, str]], warn: _KeyWarn) -> dict[str, Any] | None:
    raw, value = keys["check_ttl"]
    if not _is_positive_duration(value.strip()):
        warn(raw, value, "ignored: " + _DURATION_HINT)
        return None
    return {"TTL": value.strip()}


def _grpc_check(keys: dict[str, tuple[str, str]], address: str, port: int) -> dict[str, Any]:
    check: dict[str, Any] = {"GRPC": host_port(address, port)}
    if _truthy(keys.get("check_grpc_use_tls", ("", ""))[1]):
        check["GRPCUseTLS"] = True
        if _truthy(keys.get("check_tls_skip_verify", ("", ""))[1]):
            check["TLSSkipVerify"] = True
    return check


def _check_kind(
    keys: dict[str, tuple[str, str]], address: str, port: int, options: AgentOptions, warn: _KeyWarn
) -> dict[str, Any] | None:
    """The first usable check in registrator's order: http, https, cmd, script, ttl, tcp, grpc."""
    def given(key: str) -> bool:
        return keys.get(key, ("", ""))[1] != ""

    if given("check_http"):
        check = _http_check(keys, "http", address, port, warn)
        if check:
            return check
    if given("check_https"):
        check = _http_check(keys, "https", address, port, warn)
        if check:
            return check
    if given("check_cmd"):
        raw, value = keys["check_cmd"]
        warn(raw, value, "ignored: needs the check-cmd helper of the old progrium/consul image; "
                         "use SERVICE_CHECK_SCRIPT")
    if given("check_script"):
        check = _script_check(keys, address, port, options, warn)
        if check:
            return check
    if given("check_ttl"):
        check = _ttl_check(keys, warn)
        if check:
            return check
    if given("check_tcp") and _truthy(keys["check_tcp"][1]):
        return {"TCP": host_port(address, port)}
    if given("check_grpc") and _truthy(keys["check_grpc"][1]):
        return _grpc_check(keys, address, port)
    return None


def _duration_setting(keys: dict[str, tuple[str, str]], key: str, warn: _KeyWarn, fallback_note: str) -> str | None:
    raw, value = keys.get(key, ("", ""))
    if value == "":
        return None
    if not _is_positive_duration(value.strip()):
        warn(raw, value, f"ignored: {_DURATION_HINT}{fallback_note}")
        return None
    return value.strip()


def _service_check(
    keys: dict[str, tuple[str, str]], address: str, port: int, options: AgentOptions, warn: _KeyWarn
) -> dict[str, Any] | None:
    check = _check_kind(keys, address, port, options, warn)
    if check is None:
        return None
    if "TTL" not in check:
        interval = _duration_setting(keys, "check_interval", warn, f"; using {options.default_check_interval}")
        check["Interval"] = interval or options.default_check_interval
        timeout = _duration_setting(keys, "check_timeout", warn, "")
        if timeout:
            check["Timeout"] = timeout
    raw, status = keys.get("check_initial_status", ("", ""))
    if status:
        if status.strip().lower() in _INITIAL_STATUSES:
            check["Status"] = status.strip().lower()
        else:
            warn(raw, status, "ignored: not one of passing, warning, critical")
    deregister = _duration_setting(keys, "check_deregister_after", warn, "")
    if deregister:
        check["DeregisterCriticalServiceAfter"] = deregister
    return check


def _warn_unknown_check_keys(keys: dict[str, tuple[str, str]], warn: _KeyWarn) -> None:
    for key in sorted(keys):
        if key.startswith("check_") and key not in _CHECK_KEYS:
            raw, value = keys[key]
            warn(raw, value, "ignored: not a check setting registrator knows")


# --------------------------------------------------------------------------------------------
# the whole container


class _Warnings:
    """Collects warnings about one container, each once, in the order they happened."""

    def __init__(self, name: str) -> None:
        self.name = _clip(name)
        self.messages: list[str] = []

    def text(self, message: str) -> None:
        line = f"container '{self.name}': {message}"
        if line not in self.messages:
            self.messages.append(line)

    def key(self, raw_key: str, value: str, reason: str) -> None:
        self.text(f"{_clip(raw_key)}={_show(value)} {reason}")


def _ignored_whole(keys: dict[str, tuple[str, str]]) -> bool:
    """SERVICE_IGNORE is set and no SERVICE_<port>_IGNORE could override it for some port."""
    if keys.get("ignore", ("", ""))[1] == "":
        return False
    return not any(key.endswith("_ignore") and key.split("_", 1)[0].isdigit() for key in keys)


def _build_service(
    inspect: Any, keys: dict[str, tuple[str, str]], from_port: dict[str, tuple[str, str]],
    entry: tuple[int, str, int, str | None], is_group: bool, options: AgentOptions, warnings: _Warnings,
) -> dict[str, Any] | None:
    port, proto, service_port, host_ip_hint = entry
    if keys.get("ignore", ("", ""))[1] != "":
        return None
    name = _service_name(inspect, keys, from_port, port, is_group, options, warnings.key)
    if name is None:
        return None
    address = _service_address(inspect, options, host_ip_hint, warnings.text)
    if address is None:
        return None
    registration = {
        "ID": _service_id(inspect, keys, port, proto, options, warnings.key),
        "Name": name,
        "Address": address,
        "Port": service_port,
        "Tags": _service_tags(keys, proto, options, warnings.key),
        "Meta": _service_meta(inspect, keys, options, warnings.key),
    }
    check = _service_check(keys, address, service_port, options, warnings.key)
    if check is not None:
        registration["Check"] = check
    return registration


def container_services(inspect: Any, options: AgentOptions) -> tuple[list[dict[str, Any]], list[str]]:
    """Consul registrations for one container, and warnings naming what was dropped and why.

    Each registration is the JSON body of Consul's ``PUT /v1/agent/service/register``:
    ``{"ID", "Name", "Address", "Port", "Tags", "Meta"}`` plus ``"Check"`` when the container asks for one.
    A stopped container, an ignored one, or one without ports gives no registration.
    """
    inspect = _dict(inspect)
    warnings = _Warnings(container_name(inspect))
    if _dict(inspect.get("State")).get("Running") is False:
        return [], []
    keys = _raw_service_keys(inspect)
    if _ignored_whole(keys):
        # An ignored container is none of our business, so its odd keys are not worth a warning either.
        return [], []
    ports = _container_ports(inspect, warnings.text)
    generic, per_port = _split_port_keys(keys, {port for port, _proto in ports}, warnings.key)
    _warn_unknown_check_keys(generic, warnings.key)
    for port_keys in per_port.values():
        _warn_unknown_check_keys(port_keys, warnings.key)
    entries = _registrable_ports(inspect, ports, options)
    # Like registrator, the -<port> suffix depends on how many ports could register, not on how many
    # survive SERVICE_<port>_IGNORE, so a name does not change when another port is ignored.
    is_group = len(entries) > 1
    registrations = []
    seen_ids = set()
    for entry in entries:
        from_port = per_port.get(entry[0], {})
        merged = dict(generic)
        merged.update(from_port)
        registration = _build_service(inspect, merged, from_port, entry, is_group, options, warnings)
        if registration is None:
            continue
        if registration["ID"] in seen_ids:
            warnings.text(f"port {entry[0]} not registered: service ID {_show(registration['ID'])} "
                          "is already used by another port")
            continue
        seen_ids.add(registration["ID"])
        registrations.append(registration)
    return registrations, warnings.messages
