# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.autoproxy.stack.plugins.module_utils._routing import backend_name as haproxy_backend_name
from ansible_collections.autoproxy.stack.plugins.module_utils._tags import (
    HOST_FRAGMENT_RE,
    OPTION_KEYWORDS,
    host_for_untagged,
    is_host_fragment,
    normalise_domains,
    parse_tags,
    service_hosts,
    valid_service_name,
)
from ansible_collections.autoproxy.stack.plugins.module_utils._text import split_escaped

DOMAINS = ["127.0.0.1.nip.io", "test"]


@pytest.mark.parametrize(
    "value",
    [
        "hello",
        "world.dev",
        "www",
        "a",
        "0",
        "127.0.0.1",
        "consul-admin.infra",
        "Hello",
        "x" * 63,
        ".".join(["a"] * 127),
    ],
)
def test_host_fragment_accepts(value):
    assert is_host_fragment(value)
    assert HOST_FRAGMENT_RE.match(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "-hello",
        "hello-",
        "a..b",
        ".a",
        "a.",
        "under_score",
        "x" * 64,
        ".".join(["a"] * 127) + ".b",
        "hello\n",
        "he llo",
        "h\u00e9llo",
        "w\u0435b",
        "a;b",
        "#x",
        None,
        42,
    ],
)
def test_host_fragment_rejects(value):
    assert not is_host_fragment(value)


@pytest.mark.parametrize(
    ("tags", "routing", "aliases"),
    [
        (["hello"], ("hello",), ()),
        (["world.dev", "server_aliases=hello.home"], ("world.dev",), ("hello.home",)),
        (["server_alias=serviceA.prod.example.com"], (), ("servicea.prod.example.com",)),
        (["server_alias=a.example", "server_alias=b.example"], (), ("a.example", "b.example")),
        (["server_aliases=a.example,B.example", "server_alias=a.example"], (), ("a.example", "b.example")),
        (["b", "a", "B", "udp"], ("b", "a", "udp"), ()),
        (["Hello"], ("hello",), ()),
        ([" hello"], ("hello",), ()),
        ([], (), ()),
        (None, (), ()),
    ],
)
def test_parse_tags_routing_and_aliases(tags, routing, aliases):
    parsed = parse_tags(tags, service="www")
    assert parsed.routing == routing
    assert parsed.aliases == aliases
    assert parsed.warnings == ()


@pytest.mark.parametrize(
    ("tags", "options"),
    [
        (["sticky_session"], {"sticky_session": True}),
        (["sticky_session=true"], {"sticky_session": True}),
        (["sticky_session=false"], {}),
        (["weight=10"], {"weight": 10}),
        (["weight=0"], {"weight": 0}),
        (["weight=256"], {"weight": 256}),
        (["balance=leastconn"], {"balance": "leastconn"}),
        (["balance=static-rr"], {"balance": "static-rr"}),
        (["maxconn=1"], {"maxconn": 1}),
        (["maxconn=1000000"], {"maxconn": 1000000}),
        (
            ["hello", "sticky_session", "weight=10", "balance=source", "maxconn=100"],
            {"sticky_session": True, "weight": 10, "balance": "source", "maxconn": 100},
        ),
    ],
)
def test_parse_tags_options(tags, options):
    parsed = parse_tags(tags, service="www")
    assert parsed.options == options
    assert parsed.warnings == ()


def test_option_keywords_are_the_documented_set():
    assert {"sticky_session", "weight", "balance", "maxconn", "server_alias", "server_aliases"} == OPTION_KEYWORDS


def test_metadata_is_kept_apart():
    parsed = parse_tags(["hello", "public_ipaddress=128.1.2.3", "owner=team-a", "url=http://x/y?a=b"], service="www")
    assert parsed.routing == ("hello",)
    assert parsed.options == {}
    assert parsed.metadata == {"public_ipaddress": "128.1.2.3", "owner": "team-a", "url": "http://x/y?a=b"}
    assert parsed.warnings == ()


def test_warning_format_names_service_and_tag():
    parsed = parse_tags(["weight=abc"], service="www")
    assert parsed.warnings == ("service 'www': tag 'weight=abc' dropped: weight must be an integer 0-256",)
    assert parsed.options == {}


@pytest.mark.parametrize(
    "tag",
    [
        "",
        "hello\nworld",
        "hello\n",
        "\nhello",
        "hello\r",
        "#x",
        "a;b",
        "'quoted'",
        '"quoted"',
        "hello world",
        "h\u00e9llo",
        "w\u0435b",
        "x" * 300,
        "-hello",
        "under_score",
        "weight=abc",
        "weight=257",
        "weight=-1",
        "weight=+5",
        "weight= 5",
        "weight=\u0661\u0662",
        "weight=10\n",
        "weight=",
        "maxconn=0",
        "maxconn=1000001",
        "maxconn=1e3",
        "balance=evil",
        "balance=roundrobin\n",
        "balance=leastconn #x",
        "sticky_session=maybe",
        "server_alias=bad host",
        "server_alias=",
        "server_alias=a\nserver evil 1.2.3.4:80",
        "server_alias=" + "x" * 300,
        "key=" + "v" * 300,
        "key=with space",
        "key=quo'te",
        "key=caf\u00e9",
        "=x",
        "1key=x",
        "k\ney=x",
        42,
        None,
    ],
)
def test_bad_tags_are_dropped_with_a_warning(tag):
    parsed = parse_tags(["hello", tag], service="www")
    assert parsed.routing == ("hello",)
    assert parsed.aliases == ()
    assert parsed.options == {}
    assert parsed.metadata == {}
    assert len(parsed.warnings) == 1
    warning = parsed.warnings[0]
    assert warning.startswith("service 'www': tag ")
    assert "dropped" in warning
    assert "\n" not in warning and "\r" not in warning
    assert warning.isascii()
    assert len(warning) < 400


def test_server_aliases_keeps_the_good_items():
    parsed = parse_tags(["server_aliases=a.example,,bad host,b.example"], service="www")
    assert parsed.aliases == ("a.example", "b.example")
    assert len(parsed.warnings) == 2


def test_repeated_option_first_value_wins():
    parsed = parse_tags(["weight=1", "weight=2", "weight=1"], service="www")
    assert parsed.options == {"weight": 1}
    assert len(parsed.warnings) == 1
    assert "weight=2" in parsed.warnings[0]


def test_string_is_one_tag():
    assert parse_tags("hello", service="www").routing == ("hello",)


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("hello", ["hello"]),
        ("world.dev,server_aliases=hello.home", ["world.dev", "server_aliases=hello.home"]),
        ("server_aliases=a.x\\,b.x,hello", ["server_aliases=a.x,b.x", "hello"]),
        ("a,,b,", ["a", "b"]),
        ("", []),
    ],
)
def test_split_tag_string(text, tags):
    assert split_escaped(text) == tags


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("www_hello", "www.hello"),
        ("consul-admin_infra", "consul-admin.infra"),
        ("proxy-admin_infra", "proxy-admin.infra"),
        ("serviceA.prod", "servicea.prod"),
        ("www", "www"),
    ],
)
def test_host_for_untagged(name, host):
    assert host_for_untagged(name) == host


@pytest.mark.parametrize(
    ("name", "tag", "backend"),
    [
        ("www", "hello", "hello_www_backend"),
        ("www", "world.dev", "world.dev_www_backend"),
        ("www", "World.Dev", "world.dev_www_backend"),
        ("www_hello", None, "www_hello_backend"),
        ("consul-admin_infra", None, "consul-admin_infra_backend"),
        ("proxy-admin_infra", None, "proxy-admin_infra_backend"),
        ("serviceA.prod", None, "serviceA.prod_backend"),
    ],
)
def test_haproxy_backend_name(name, tag, backend):
    assert haproxy_backend_name(name, tag) == backend


@pytest.mark.parametrize(
    ("name", "tag"),
    [("bad name", None), ("www\n", None), ("", None), ("www", "bad tag"), ("www", "x;y"), ("_www", None)],
)
def test_haproxy_backend_name_rejects(name, tag):
    with pytest.raises(ValueError, match="invalid"):
        haproxy_backend_name(name, tag)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("www", True),
        ("www_hello", True),
        ("serviceA.prod", True),
        ("consul-admin_infra", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("a_" * 100, False),
        ("", False),
        ("_www", False),
        ("www_", False),
        ("w__w", False),
        ("www hello", False),
        ("www\n", False),
        ("caf\u00e9", False),
        ("a/b", False),
        (None, False),
    ],
)
def test_valid_service_name(name, valid):
    assert valid_service_name(name) is valid


@pytest.mark.parametrize(
    ("name", "tags", "hosts"),
    [
        ("www", ["hello"], ["www.hello", "www.hello.127.0.0.1.nip.io", "www.hello.test"]),
        (
            "www",
            ["world.dev", "server_aliases=hello.home"],
            [
                "www.world.dev",
                "www.world.dev.127.0.0.1.nip.io",
                "www.world.dev.test",
                "hello.home",
                "hello.home.127.0.0.1.nip.io",
                "hello.home.test",
            ],
        ),
        ("www_hello", [], ["www.hello", "www.hello.127.0.0.1.nip.io", "www.hello.test"]),
        (
            "consul-admin_infra",
            [],
            ["consul-admin.infra", "consul-admin.infra.127.0.0.1.nip.io", "consul-admin.infra.test"],
        ),
        (
            "proxy-admin_infra",
            None,
            ["proxy-admin.infra", "proxy-admin.infra.127.0.0.1.nip.io", "proxy-admin.infra.test"],
        ),
        (
            "serviceA.prod",
            ["server_alias=serviceA.prod.example.com"],
            [
                "servicea.prod",
                "servicea.prod.127.0.0.1.nip.io",
                "servicea.prod.test",
                "servicea.prod.example.com",
                "servicea.prod.example.com.127.0.0.1.nip.io",
                "servicea.prod.example.com.test",
            ],
        ),
        (
            "www",
            ["hello", "sticky_session", "public_ipaddress=128.1.2.3"],
            ["www.hello", "www.hello.127.0.0.1.nip.io", "www.hello.test"],
        ),
        ("bad name", ["hello"], []),
    ],
)
def test_service_hosts_seed_examples(name, tags, hosts):
    assert service_hosts(name, tags, DOMAINS) == hosts


def test_service_hosts_takes_haproxy_domain_string():
    assert service_hosts("www", ["hello"], "127.0.0.1.nip.io:test") == service_hosts("www", ["hello"], DOMAINS)


def test_service_hosts_without_domains():
    assert service_hosts("www", ["hello", "world"], []) == ["www.hello", "www.world"]


def test_service_hosts_drops_hosts_too_long_for_dns():
    long_domain = ".".join(["d" * 60] * 4)
    hosts = service_hosts("www", ["t" * 60], [long_domain])
    assert hosts == ["www." + "t" * 60]


@pytest.mark.parametrize(
    ("domains", "kept", "warned"),
    [
        (["127.0.0.1.nip.io", "test"], ["127.0.0.1.nip.io", "test"], 0),
        ("127.0.0.1.nip.io:test", ["127.0.0.1.nip.io", "test"], 0),
        (["Test.", "test"], ["test"], 0),
        (["bad domain", "ok", "x\ny", 5], ["ok"], 3),
        (None, [], 0),
        ("", [], 0),
    ],
)
def test_normalise_domains(domains, kept, warned):
    result, warnings = normalise_domains(domains)
    assert result == kept
    assert len(warnings) == warned
