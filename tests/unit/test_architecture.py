# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Imports point one way (docs/ARCHITECTURE.md): faces and agents -> rules.

Every Python file of the rules and the agents is parsed with ``ast``; each import, at the top of
the file or inside a function, is checked against the table of docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTION = "ansible_collections.autoproxy.stack"
MODULE_UTILS = f"{COLLECTION}.plugins.module_utils"

# What each part may not import, as module-name prefixes (a prefix matches itself and its children).
FACES = (f"{COLLECTION}.plugins.modules", f"{COLLECTION}.plugins.filter", f"{COLLECTION}.plugins.plugin_utils",
         f"{COLLECTION}.plugins.doc_fragments")
AGENTS = (f"{COLLECTION}.agents",)
ANSIBLE = ("ansible",)


def imported_modules(source: str, module: str) -> list[str]:
    """Absolute names of every module ``source`` imports; ``module`` (dotted) resolves relative imports."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join(parent + ([base] if base else []))
            names.append(base)
            # 'from package import module' imports the module too.
            names.extend(f"{base}.{alias.name}" for alias in node.names)
    return names


def _is_module_side(name: str) -> bool:
    return name.startswith(f"{MODULE_UTILS}._") and name.endswith("_module")


def forbidden_imports(part: str, imports: list[str]) -> list[str]:
    """The imports ``part`` ("rules" or "agents") may not make, per docs/ARCHITECTURE.md."""
    banned = FACES + ANSIBLE + (AGENTS if part == "rules" else ())
    return sorted({
        name for name in imports
        if any(name == prefix or name.startswith(prefix + ".") for prefix in banned) or _is_module_side(name)
    })


def _python_files(folder: str) -> list[str]:
    found = []
    for directory, _dirs, files in os.walk(os.path.join(ROOT, folder)):
        found.extend(os.path.join(directory, name) for name in files if name.endswith(".py"))
    return sorted(found)


def _dotted(path: str) -> str:
    relative = os.path.relpath(path, ROOT)[: -len(".py")].replace(os.sep, ".")
    return f"{COLLECTION}.{relative}"


RULE_FILES = [path for path in _python_files(os.path.join("plugins", "module_utils"))
              if not _is_module_side(_dotted(path))]
AGENT_FILES = _python_files("agents")


def _check(part: str, path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return forbidden_imports(part, imported_modules(handle.read(), _dotted(path)))


def test_the_tree_has_rules_and_agents_to_check():
    assert any(path.endswith("_tags.py") for path in RULE_FILES)
    assert any(path.endswith("registrator.py") for path in AGENT_FILES)
    assert not any(path.endswith("_consul_module.py") for path in RULE_FILES)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda path: os.path.relpath(path, ROOT))
def test_rules_import_neither_faces_nor_agents_nor_ansible(path):
    assert _check("rules", path) == []


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda path: os.path.relpath(path, ROOT))
def test_agents_import_neither_modules_nor_filters_nor_ansible(path):
    assert _check("agents", path) == []


def test_the_check_finds_each_kind_of_wrong_import():
    source = (
        "import ansible.module_utils.basic\n"
        f"from {COLLECTION}.plugins.modules import haproxy_config\n"
        f"from {COLLECTION}.plugins.module_utils._consul_module import consul_client\n"
        "def later():\n"
        f"    from {COLLECTION}.agents.proxy import ProxyAgent\n"
        f"from {COLLECTION}.plugins.module_utils._tags import parse_tags\n"
        "from . import _consul_module\n"
    )
    module = f"{MODULE_UTILS}._example"
    assert forbidden_imports("rules", imported_modules(source, module)) == [
        "ansible.module_utils.basic",
        f"{COLLECTION}.agents.proxy",
        f"{COLLECTION}.agents.proxy.ProxyAgent",
        f"{MODULE_UTILS}._consul_module",
        f"{COLLECTION}.plugins.modules",
        f"{COLLECTION}.plugins.modules.haproxy_config",
    ]
    # Agents may import agents, but not the rest.
    assert f"{COLLECTION}.agents.proxy" not in forbidden_imports("agents", imported_modules(source, module))
    assert forbidden_imports("rules", imported_modules(f"from {MODULE_UTILS} import _tags\n", module)) == []


# ---- docs/ARCHITECTURE.md's file-by-file tables: every file has a row, and imports only what its row lists

ARCHITECTURE = os.path.join(ROOT, "docs", "ARCHITECTURE.md")
PARTS = {  # heading of the table -> (folder, module prefix its last column names)
    "## The rules, file by file": (os.path.join("plugins", "module_utils"), MODULE_UTILS),
    "## The agents, file by file": ("agents", f"{COLLECTION}.agents"),
}


def documented_imports(text: str, heading: str) -> dict[str, set[str]]:
    """File name -> names its row allows, from the table under ``heading`` ("—" allows none)."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        rows[cells[0].strip("`")] = {name.strip().strip("`") for name in cells[-1].split(",")} - {"—"}
    return rows


def local_imports(path: str, prefix: str) -> set[str]:
    """The files of the package ``prefix`` that ``path`` imports, by module name (``_routing``)."""
    with open(path, encoding="utf-8") as handle:
        names = imported_modules(handle.read(), _dotted(path))
    return {name[len(prefix) + 1:].split(".")[0] for name in names if name.startswith(prefix + ".")}


def _architecture_text() -> str:
    with open(ARCHITECTURE, encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.parametrize("heading", sorted(PARTS))
def test_every_file_has_a_row_and_every_row_a_file(heading):
    folder, _prefix = PARTS[heading]
    files = {os.path.relpath(path, os.path.join(ROOT, folder)) for path in _python_files(folder)}
    assert set(documented_imports(_architecture_text(), heading)) == files


DOCUMENTED_FILES = [(heading, path) for heading, (folder, _prefix) in sorted(PARTS.items())
                    for path in _python_files(folder)]


@pytest.mark.parametrize(("heading", "path"), DOCUMENTED_FILES,
                         ids=[os.path.relpath(path, ROOT) for _heading, path in DOCUMENTED_FILES])
def test_files_import_only_what_their_row_lists(heading, path):
    _folder, prefix = PARTS[heading]
    allowed = documented_imports(_architecture_text(), heading).get(os.path.basename(path), set())
    assert local_imports(path, prefix) - allowed == set()


def test_the_table_reader_reads_names_and_dashes():
    text = ("## T\n\n| file | what | may import |\n| --- | --- | --- |\n"
            "| `_a.py` | x, y | `_b`, `_c` |\n| `_b.py` | z | — |\n\n## Next\n| `_d.py` | w | `_a` |\n")
    assert documented_imports(text, "## T") == {"_a.py": {"_b", "_c"}, "_b.py": set()}
