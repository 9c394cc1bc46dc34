#!/usr/bin/env bash
# Copyright (c) 2026 autoproxy.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Runs ansible-test on a copy of the collection laid out as ansible_collections/autoproxy/stack.
#   tests/sanity/ansible-test.sh sanity|units|integration [ansible-test options...]
# ansible-test resolves the real working directory, so the .collections symlink that lets
# ansible-playbook use the checkout does not work for it: it needs a real directory of that name.
# Runs with --local --python $ANSIBLE_TEST_PYTHON (default 3.11); its linters come from PyPI.
set -euo pipefail

command=${1:?usage: tests/sanity/ansible-test.sh sanity|units|integration [options...]}
shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${VENV_BIN:-$root/.venv/bin}
python_version=${ANSIBLE_TEST_PYTHON:-3.11}
# Outside the checkout: inside it, git would see the copy as ignored files and ansible-test,
# which lists a collection's files with git, would find none. One tree per checkout.
tree_root=${ANSIBLE_TEST_TREE:-${TMPDIR:-/tmp}/autoproxy-stack-ansible-test-$(printf '%s' "$root" | cksum | cut -d' ' -f1)}
tree=$tree_root/ansible_collections/autoproxy/stack

# ansible-test bootstraps pip in each virtualenv it makes with a get-pip script it downloads from
# a host that may not be reachable; it uses a cached copy first. The stand-in installs the same
# pip release from PyPI, starting from the pip that ships with Python (ensurepip).
install_pip_bootstrap() {
    local version cache
    version=$("$bin/python" -c "
from ansible_test._internal.python_requirements import get_venv_packages

class Python:
    version = '$python_version'

print(get_venv_packages(Python())['pip'])")
    cache=$HOME/.ansible/test/cache/get_pip_${version//./_}.py
    [ -e "$cache" ] && return 0
    mkdir -p "$(dirname "$cache")"
    cat > "$cache.tmp" <<'PY'
# Stand-in for pip's get-pip.py, written by autoproxy.stack's tests/sanity/ansible-test.sh.
# ansible-test runs it with pip install arguments (pip==<version> ...) in a virtualenv without pip.
import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], check=True,
               stdout=subprocess.DEVNULL)
subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True)
PY
    mv "$cache.tmp" "$cache"
}

# The collection's files: what git tracks plus new files it does not ignore; never the
# virtualenv, caches, test output or the .collections symlink (it loops back to the root).
collection_files() {
    if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$root" ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' file; do
                case $file in .collections/*) continue ;; esac
                [ -e "$root/$file" ] && printf '%s\0' "$file"
            done
    else
        (cd "$root" && find . \( -name .git -o -name .venv -o -name .cache -o -name .collections \
            -o -name .pytest_cache -o -name .ruff_cache -o -name __pycache__ -o -path ./tests/output \) -prune \
            -o \( -type f -o -type l \) -printf '%P\0')
    fi
}

copy_collection() {
    # tests/output is kept: ansible-test's results of the last run stay readable there.
    mkdir -p "$tree"
    find "$tree" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
    [ -d "$tree/tests" ] && find "$tree/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
    collection_files | (cd "$root" && tar --null -T - -cf -) | tar -xf - -C "$tree"
}

install_pip_bootstrap
copy_collection

# ansible-test passes targets no environment of ours; its way in is integration_config.yml, whose
# vars every target gets: AUTOPROXY_TEST_CONSUL_URL=... becomes autoproxy_test_consul_url.
write_integration_config() {
    local config=$tree/tests/integration/integration_config.yml
    [ -e "$config" ] && return 0
    "$bin/python" - "$config" <<'PY'
import json
import os
import sys

values = {key.lower(): value for key, value in sorted(os.environ.items()) if key.startswith("AUTOPROXY_TEST_")}
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    handle.write("---\n# written by tests/sanity/ansible-test.sh from AUTOPROXY_TEST_* variables\n")
    handle.write(json.dumps(values, indent=2) + "\n")
PY
}

extra=()
if [ "$command" = integration ]; then
    if [ -z "$(find "$tree/tests/integration/targets" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ]; then
        echo "ansible-test.sh: no integration targets (tests/integration/targets); nothing to run"
        exit 0
    fi
    write_integration_config
    # The targets start and remove containers on this Docker host: ansible-test calls that destructive
    # and would otherwise skip them, and report success.
    extra=(--allow-destructive)
fi

cd "$tree"
export PATH=$bin:$PATH
# The copy is tested as an installed collection, not through the checkout's ansible.cfg.
unset ANSIBLE_CONFIG
echo "ansible-test.sh: ansible-test $command --local --python $python_version $* (in $tree)"
exec "$bin/ansible-test" "$command" --local --python "$python_version" --color no "${extra[@]}" "$@"
