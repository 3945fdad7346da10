# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection artifact and the collections it needs.

- Every collection the roles, playbooks and plugins refer to by FQCN is a `dependencies`
  entry of galaxy.yml, is checked by preflight at the same oldest version, and is pinned in
  collections/requirements.yml (with its own dependencies) at the version of the `ansible`
  bundle installed from requirements.txt.
- `ansible-galaxy collection build` ships the collection only (galaxy.yml `build_ignore`):
  no tests, Molecule scenarios, inventories, lab, venv, caches or dotfiles; with LICENSE.
- That artifact, installed next to the pinned collections and nothing else (no Galaxy here:
  the pinned collections are taken from the installed bundle), passes the syntax check of
  every playbook; without one of them it does not.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml
from ansible.galaxy.dependency_resolution.versioning import meets_requirements

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)
SCANNED = ('roles', 'playbooks', 'plugins')
# Not dependencies: ansible-core's own names and this collection.
BUILTIN = {'ansible.builtin', 'ansible.legacy', 'aiquiz.ops'}
FQCN = re.compile(r'(?<![\w.])([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.([a-z_][a-z0-9_]*)')
# A gzip of the collection alone is about 0.5 MiB; a venv or cache that slipped in is many MiB.
MAX_ARTIFACT_BYTES = 1024 * 1024


class _TagLoader(yaml.SafeLoader):
    """safe_load that reads Ansible's tags (!unsafe, !vault) as the plain node under them."""


def _untagged(loader, _suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


_TagLoader.add_multi_constructor('!', _untagged)


def tool(name):
    """A console script of the venv running the tests, else the one on PATH."""
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else shutil.which(name)


def load(path):
    with open(os.path.join(ROOT, path), encoding='utf-8') as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope='module')
def installed():
    """{fqcn: (version, directory)} as the project's ansible finds them (first on the path wins)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    out = subprocess.run([tool('ansible-galaxy'), 'collection', 'list', '--format', 'json'],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    found = {}
    for base, collections in json.loads(out).items():
        for name, info in collections.items():
            found.setdefault(name, (info['version'], os.path.join(base, *name.split('.'))))
    return found


def _python_refs(path):
    """(namespace.name, where) from imports of ansible_collections.* and from string constants
    that are not docstrings (DOCUMENTATION, EXAMPLES, defaults); comments and docstrings are prose."""
    with open(path, encoding='utf-8') as fh:
        tree = ast.parse(fh.read(), path)
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
                docstrings.add(id(node.body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            for match in FQCN.finditer(node.value):
                yield '%s.%s' % match.group(1, 2), node.lineno
            continue
        else:
            continue
        for name in names:
            parts = name.split('.')
            if parts[0] == 'ansible_collections' and len(parts) >= 3:
                yield '%s.%s' % (parts[1], parts[2]), node.lineno


def _task_keys(data):
    """Keys shaped like an FQCN in mappings that are list items: module and action names."""
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                for key in item:
                    if isinstance(key, str) and FQCN.fullmatch(key):
                        yield key
            yield from _task_keys(item)
    elif isinstance(data, dict):
        for value in data.values():
            yield from _task_keys(value)


@pytest.fixture(scope='module')
def used(installed):
    """{namespace.name: [file:line, ...]} for every other collection the tree refers to.

    A text match counts when it names an installed collection (so `net.ipv4.ip_forward` or
    `www.gnu.org` do not); a task's module name counts even when nothing provides it."""
    installed_names = set(installed)
    refs = {}
    for top in SCANNED:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = [d for d in dirnames if d != '__pycache__']
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                rel = os.path.relpath(path, ROOT)
                if filename.endswith('.py'):
                    found = list(_python_refs(path))
                elif filename.endswith(('.yml', '.yaml', '.j2')):
                    with open(path, encoding='utf-8') as fh:
                        text = fh.read()
                    found = [('%s.%s' % m.group(1, 2), text.count('\n', 0, m.start()) + 1) for m in FQCN.finditer(text)]
                    if filename.endswith(('.yml', '.yaml')) and re.match(r'(roles/[^/]+/(tasks|handlers)|playbooks)/', rel):
                        for key in _task_keys(yaml.load(text, Loader=_TagLoader)):  # noqa: S506 - a safe loader
                            found.append((key.rsplit('.', 1)[0], 'task key %s' % key))
                            installed_names.add(key.rsplit('.', 1)[0])
                else:
                    continue
                for name, line in found:
                    if name in installed_names and name not in BUILTIN:
                        refs.setdefault(name, []).append('%s:%s' % (rel, line))
    return refs


def closure(names, installed):
    """names and, recursively, the dependencies their installed MANIFEST.json declares."""
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        with open(os.path.join(installed[name][1], 'MANIFEST.json'), encoding='utf-8') as fh:
            todo.extend(json.load(fh)['collection_info'].get('dependencies') or {})
    return seen


def test_every_collection_used_is_a_galaxy_dependency(used):
    dependencies = set(load('galaxy.yml')['dependencies'])
    missing = {name: where[:3] for name, where in used.items() if name not in dependencies}
    unused = dependencies - set(used)
    assert not missing, 'used but not in galaxy.yml dependencies: %s' % missing
    assert not unused, 'in galaxy.yml dependencies but used nowhere in %s: %s' % (', '.join(SCANNED), sorted(unused))
    # The scan itself finds what is known to be there.
    assert {'community.crypto', 'community.postgresql', 'ansible.posix'} <= set(used)


def test_requirements_pin_the_bundled_version_of_every_collection_needed(used, installed):
    pinned = {item['name']: str(item['version']) for item in load('collections/requirements.yml')['collections']}
    needed = closure(used, installed)
    assert set(pinned) == needed, 'collections/requirements.yml: missing %s, not needed %s' % (
        sorted(needed - set(pinned)), sorted(set(pinned) - needed))
    wrong = {name: (version, installed[name][0]) for name, version in pinned.items() if version != installed[name][0]}
    assert not wrong, 'pinned version differs from the installed bundle (pinned, installed): %s' % wrong
    dependencies = load('galaxy.yml')['dependencies']
    unmet = {name: (pinned[name], rng) for name, rng in dependencies.items() if not meets_requirements(pinned[name], rng)}
    assert not unmet, 'pinned versions outside galaxy.yml ranges: %s' % unmet


def test_preflight_checks_every_galaxy_dependency_at_its_oldest_version():
    dependencies = load('galaxy.yml')['dependencies']
    checked = load('roles/preflight/defaults/main.yml')['preflight_required_collections']
    assert {name: '>=%s' % version for name, version in checked.items()} == dependencies


@pytest.fixture(scope='module')
def artifact(tmp_path_factory):
    """The tarball `ansible-galaxy collection build` makes from this tree."""
    out = tmp_path_factory.mktemp('artifact')
    subprocess.run([tool('ansible-galaxy'), 'collection', 'build', '--output-path', str(out), ROOT],
                   cwd=ROOT, capture_output=True, text=True, check=True)
    (path,) = out.glob('aiquiz-ops-*.tar.gz')
    with tarfile.open(path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        license_text = tar.extractfile('LICENSE').read().decode() if 'LICENSE' in members else None
    return {'path': path, 'members': members, 'license': license_text}


def test_artifact_ships_the_collection_only(artifact):
    path, members = artifact['path'], artifact['members']
    names = sorted(members)
    tops = {name.split('/')[0] for name in names}
    for required in ('roles/preflight/tasks/main.yml', 'plugins/modules', 'playbooks/go-live.yml', 'meta/runtime.yml',
                     'LICENSE', 'README.md', 'MANIFEST.json', 'FILES.json', 'changelogs/changelog.yaml',
                     'docs/admin/awx.md'):
        assert required in members, '%s is missing from %s' % (required, path.name)
    assert tops == {'roles', 'plugins', 'playbooks', 'meta', 'docs', 'changelogs',
                    'LICENSE', 'README.md', 'MANIFEST.json', 'FILES.json'}, sorted(tops)
    dotted = [name for name in names if any(part.startswith('.') for part in name.split('/'))]
    assert not dotted, 'dotfiles in the artifact: %s' % dotted[:5]
    lab_only = ('docs/admin/lab.md', 'docs/developer/testing.md')
    # The lab's inventory is community.docker's docker_containers: the collection ships no inventory plugin.
    lab = [name for name in names if name in lab_only or name.endswith('.pyc') or name.startswith('plugins/inventory/')]
    assert not lab, lab
    size = path.stat().st_size
    files = sum(1 for m in members.values() if m.isfile())
    print('%s: %d bytes, %d files' % (path.name, size, files))
    assert size < MAX_ARTIFACT_BYTES, '%s is %d bytes: something besides the collection is in it' % (path.name, size)


def test_artifact_carries_the_gpl3_licence_it_declares(artifact):
    license_text = artifact['license']
    assert load('galaxy.yml')['license'] == ['GPL-3.0-or-later']
    assert license_text is not None and license_text.split()[:6] == ['GNU', 'GENERAL', 'PUBLIC', 'LICENSE', 'Version', '3,']
    with open(os.path.join(ROOT, 'LICENSE'), encoding='utf-8') as fh:
        assert license_text == fh.read()


def _syntax_check(collections_path, tmp_path):
    playbooks = sorted(str(p) for p in (collections_path / 'ansible_collections/aiquiz/ops/playbooks').glob('*.yml'))
    env = dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / 'empty.cfg'), ANSIBLE_COLLECTIONS_PATH=str(collections_path),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH='false', ANSIBLE_NOCOLOR='1')
    env.pop('ANSIBLE_COLLECTIONS_PATHS', None)
    return subprocess.run([tool('ansible-playbook'), '--syntax-check', '-i', 'localhost,', *playbooks],
                          cwd=tmp_path, env=env, capture_output=True, text=True, check=False)


def test_artifact_with_the_pinned_collections_alone_passes_the_syntax_check(artifact, installed, tmp_path):
    path = artifact['path']
    scratch = tmp_path / 'collections'
    (tmp_path / 'empty.cfg').write_text('')
    subprocess.run([tool('ansible-galaxy'), 'collection', 'install', '--offline', '--no-deps', '-p', str(scratch), str(path)],
                   cwd=tmp_path, env=dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / 'empty.cfg')),
                   capture_output=True, text=True, check=True)
    # Galaxy is out of reach here: each pinned collection comes from the installed bundle,
    # at the pinned version (the test above checks they are equal).
    for item in load('collections/requirements.yml')['collections']:
        namespace, name = item['name'].split('.')
        (scratch / 'ansible_collections' / namespace).mkdir(parents=True, exist_ok=True)
        (scratch / 'ansible_collections' / namespace / name).symlink_to(installed[item['name']][1])
    proc = _syntax_check(scratch, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count('playbook: ') == len(list((scratch / 'ansible_collections/aiquiz/ops/playbooks').glob('*.yml')))

    # The check has teeth: without one pinned collection it fails and names it.
    (scratch / 'ansible_collections/community/postgresql').unlink()
    proc = _syntax_check(scratch, tmp_path)
    assert proc.returncode != 0
    assert 'community.postgresql.' in proc.stdout + proc.stderr
