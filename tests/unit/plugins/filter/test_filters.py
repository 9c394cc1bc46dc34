# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.autoproxy.stack.plugins.filter.haproxy_backend_name import FilterModule as BackendFilters
from ansible_collections.autoproxy.stack.plugins.filter.haproxy_backend_name import haproxy_backend_name
from ansible_collections.autoproxy.stack.plugins.filter.service_hosts import FilterModule as HostsFilters
from ansible_collections.autoproxy.stack.plugins.filter.service_hosts import service_hosts
from ansible_collections.autoproxy.stack.plugins.filter.service_tags import FilterModule as TagsFilters
from ansible_collections.autoproxy.stack.plugins.filter.service_tags import service_tags


def test_each_file_registers_its_one_filter():
    assert TagsFilters().filters() == {"service_tags": service_tags}
    assert HostsFilters().filters() == {"service_hosts": service_hosts}
    assert BackendFilters().filters() == {"haproxy_backend_name": haproxy_backend_name}


def test_service_tags_sorts_tags_by_meaning():
    assert service_tags(["hello", "World.Dev", "sticky_session", "weight=5", "server_alias=a.example.com",
                         "public_ipaddress=128.1.2.3"]) == {
        "routing": ["hello", "world.dev"],
        "aliases": ["a.example.com"],
        "options": {"sticky_session": True, "weight": 5},
        "metadata": {"public_ipaddress": "128.1.2.3"},
        "warnings": [],
    }


def test_service_tags_reads_a_service_tags_string_with_escaped_commas():
    parsed = service_tags("hello,server_aliases=a.example.com\\,b.example.com", service="www")
    assert parsed["routing"] == ["hello"]
    assert parsed["aliases"] == ["a.example.com", "b.example.com"]


def test_service_tags_warns_naming_service_and_tag():
    assert service_tags(["weight=500"], service="www")["warnings"] == [
        "service 'www': tag 'weight=500' dropped: weight must be an integer 0-256"
    ]


@pytest.mark.parametrize("bad", [{"a": 1}, 5, None])
def test_service_tags_rejects_non_lists_naming_the_filter(bad):
    with pytest.raises(AnsibleFilterError, match=r"^autoproxy\.stack\.service_tags: the input must be a list"):
        service_tags(bad)


def test_service_hosts_follows_rules_one_to_four():
    assert service_hosts("www", ["hello"], ["127.0.0.1.nip.io", "test"]) == [
        "www.hello", "www.hello.127.0.0.1.nip.io", "www.hello.test"]
    assert service_hosts("www_hello") == ["www.hello"]
    assert service_hosts("consul-admin_infra", "server_alias=c.example.com", "test") == [
        "consul-admin.infra", "consul-admin.infra.test", "c.example.com", "c.example.com.test"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bad name!",), "'bad name!' is not a routable service name"),
        (("www", {"hello": 1}), "tags must be a list"),
        (("www", [], 5), "domains must be a list"),
    ],
)
def test_service_hosts_rejects_bad_input_naming_the_filter(args, message):
    with pytest.raises(AnsibleFilterError, match=r"^autoproxy\.stack\.service_hosts: " + message):
        service_hosts(*args)


def test_haproxy_backend_name_for_tagged_and_untagged_services():
    assert haproxy_backend_name("www", "hello") == "hello_www_backend"
    assert haproxy_backend_name("www", "World.Dev") == "world.dev_www_backend"
    assert haproxy_backend_name("www_hello") == "www_hello_backend"


@pytest.mark.parametrize(("args", "message"), [(("a b",), "invalid service name"), (("www", "x y"), "invalid routing")])
def test_haproxy_backend_name_errors_name_the_filter(args, message):
    with pytest.raises(AnsibleFilterError, match=r"^autoproxy\.stack\.haproxy_backend_name: " + message):
        haproxy_backend_name(*args)
