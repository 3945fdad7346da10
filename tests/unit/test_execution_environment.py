# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""execution-environment.yml: what it installs agrees with the project's pins, and
`ansible-builder create` writes a complete build context (the collection tarball, the
collection, Python and system requirement files, a Containerfile that installs them).

The image itself is not built here: its base image cannot be pulled on this machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
BIN = os.path.dirname(sys.executable)
EE_FILE = 'execution-environment.yml'


def load(path):
    with open(os.path.join(ROOT, path), encoding='utf-8') as fh:
        return yaml.safe_load(fh)


def read(path):
    with open(os.path.join(ROOT, path), encoding='utf-8') as fh:
        return fh.read()


def project_pins():
    """{lowercased name: line} from requirements.txt."""
    pins = {}
    for line in read('requirements.txt').splitlines():
        if '==' in line and not line.startswith('#'):
            pins[line.split('==')[0].strip().lower()] = line.strip()
    return pins


def requirement_lines(path):
    return [line.split('#')[0].strip() for line in read(path).splitlines() if line.split('#')[0].strip()]


def builder():
    """The ansible-builder console script: the test venv's, else the one on PATH."""
    path = os.path.join(BIN, 'ansible-builder')
    return path if os.path.exists(path) else shutil.which('ansible-builder')


def test_ee_installs_the_project_pins():
    ee = load(EE_FILE)
    assert ee['version'] == 3
    deps = ee['dependencies']
    pins = project_pins()
    assert deps['ansible_core']['package_pip'] == pins['ansible-core']
    assert deps['ansible_runner']['package_pip'] == pins['ansible-runner']
    assert deps['galaxy'] == 'collections/requirements.yml'
    for line in requirement_lines(deps['python']):
        name = re.split(r'[=<>!~\[ ]', line)[0].lower()
        assert line == pins.get(name), '%s: %s is not the pin of requirements.txt (%s)' % (deps['python'], line, pins.get(name))
    assert requirement_lines(deps['system']), '%s lists no package' % deps['system']


@pytest.mark.skipif(builder() is None, reason='ansible-builder is not installed (pinned in requirements.txt: pip install ansible-builder==3.2.0)')
def test_ansible_builder_create_writes_a_complete_build_context(tmp_path):
    ee = load(EE_FILE)
    deps = ee['dependencies']
    # A copy of what the definition refers to, so the build context is made from this tree
    # without writing into it.
    project = tmp_path / 'project'
    for rel in (EE_FILE, deps['galaxy'], deps['python'], deps['system']):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(ROOT, rel), project / rel)
    tarball_dir = project / 'ee'
    subprocess.run([os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', '--output-path', str(tarball_dir), ROOT],
                   cwd=ROOT, capture_output=True, text=True, check=True)
    (tarball,) = tarball_dir.glob('aiquiz-ops-*.tar.gz')
    assert tarball.name == 'aiquiz-ops-%s.tar.gz' % load('galaxy.yml')['version']

    context = tmp_path / 'context'
    proc = subprocess.run([builder(), 'create', '-f', str(project / EE_FILE), '-c', str(context),
                           '--output-filename', 'Containerfile'],
                          cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'No matches' not in proc.stdout + proc.stderr, proc.stdout + proc.stderr

    build = context / '_build'
    assert (build / 'requirements.yml').read_text() == read(deps['galaxy'])
    assert (build / 'requirements.txt').read_text() == read(deps['python'])
    assert (build / 'bindep.txt').read_text() == read(deps['system'])
    assert (build / 'aiquiz' / tarball.name).read_bytes() == tarball.read_bytes()
    containerfile = (context / 'Containerfile').read_text()
    assert 'ARG EE_BASE_IMAGE="%s"' % ee['images']['base_image']['name'] in containerfile
    refs = '%s %s' % (deps['ansible_core']['package_pip'], deps['ansible_runner']['package_pip'])
    assert 'ARG ANSIBLE_INSTALL_REFS="%s"' % refs in containerfile
    # The pinned collections first, then aiquiz.ops from the tarball without its dependencies.
    galaxy = containerfile.index('collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml')
    own = containerfile.index('--no-deps --collections-path /usr/share/ansible/collections /build/aiquiz/aiquiz-ops-*.tar.gz')
    assert galaxy < own
    # The collections reach the final image.
    assert containerfile.rindex('COPY --from=galaxy /usr/share/ansible /usr/share/ansible') > own
