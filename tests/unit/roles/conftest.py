# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' host scripts, laid out as the roles install them (the script beside the
module_utils it imports) and loaded for a test; and plays of role tasks run on localhost."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
BACKUP_SCRIPT = ('roles/backup/files/aiquiz_backup.py', 'plugins/module_utils/_backup_catalogue.py',
                 'plugins/module_utils/_backup_gfs.py', 'plugins/module_utils/_backup_paths.py',
                 'plugins/module_utils/_backup_restic.py', 'plugins/module_utils/_files.py')
RESTORE_SCRIPT = ('roles/restore/files/aiquiz_restore.py', 'plugins/module_utils/_backup_paths.py',
                  'plugins/module_utils/_files.py')


def load_host_script(directory, sources, name):
    """Copy sources (the script first) into directory and import the script as name."""
    os.makedirs(str(directory), exist_ok=True)
    for src in sources:
        shutil.copy(os.path.join(ROOT, src), str(directory))
    # Kept on the path: the scripts import their helpers at call time too.
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    spec = importlib.util.spec_from_file_location(name, os.path.join(str(directory), os.path.basename(sources[0])))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_local_play(tmp_path, play, variables, env=None, timeout=300):
    """ansible-playbook of play (YAML text) on localhost with variables as extra vars; (rc, output).
    The audit trail goes to tmp_path; env adds to (or, with None values, removes from) the environment."""
    (tmp_path / 'play.yml').write_text(play)
    run_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   AIQUIZ_AUDIT_DIR=str(tmp_path / 'audit'))
    for key, value in (env or {}).items():
        if value is None:
            run_env.pop(key, None)
        else:
            run_env[key] = value
    extra = dict({'ansible_python_interpreter': sys.executable}, **variables)
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,',
                           '-c', 'local', '-e', json.dumps(extra), str(tmp_path / 'play.yml')],
                          cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr
