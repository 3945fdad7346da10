# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' host scripts, laid out as the roles install them (the script beside the
module_utils it imports) and loaded for a test."""

from __future__ import annotations

import importlib.util
import os
import shutil
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
