#!/usr/bin/env bash
# ansible-test sanity on a copy of the working tree placed under
# ansible_collections/aiquiz/ops, the layout ansible-test requires.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${AIQUIZ_SANITY_DIR:-/tmp/aiquiz-sanity}
dest="$work/ansible_collections/aiquiz/ops"
rm -rf "$dest" && mkdir -p "$dest"
cd "$root"
# collections/ only links back to this tree.
git ls-files -co --exclude-standard -z -- . ':!collections' | xargs -0 cp --parents -t "$dest"
cd "$dest"
# A git repository lets ansible-test see exactly the project's files.
git init -q && git add -A && git -c user.name=ci -c user.email=ci@localhost commit -qm sanity
# Sanity gets a venv of its own: its pinned linters must not move the
# project's dependencies. It is reused while ansible-core's pin is unchanged.
core=$(grep '^ansible-core==' "$root/requirements.txt")
venv="$root/.cache/sanity-venv"
if [ "$(cat "$venv/.pin" 2>/dev/null)" != "$core" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$core"
  echo "$core" > "$venv/.pin"
  fresh=1
fi
# ansible-test fetches a pip bootstrap script from a host outside our
# registries; give it one that uses ensurepip and PyPI instead.
pipver=$(grep -ho "pip='[0-9.]*'" "$venv"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | tr -dc '0-9.\n' | sort -u)
mkdir -p ~/.ansible/test/cache
for v in ${pipver:-24.2}; do
  cp "$root/tests/get_pip_offline.py" ~/.ansible/test/cache/"get_pip_${v//./_}.py"
done
export PATH="$venv/bin:$PATH"
req=()
[ -n "${fresh:-}" ] && req=(--requirements)
exec ansible-test sanity --local "${req[@]}" --python 3.11 --color no "$@"
