"""Lookup module_utils_source: host scripts get the same code the modules import."""

import os

import pytest

from ansible.errors import AnsibleLookupError
from ansible.plugins.loader import lookup_loader

from ansible_collections.aiquiz.ops.plugins.module_utils import _files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def test_returns_the_text_the_modules_import():
    lookup = lookup_loader.get('aiquiz.ops.module_utils_source')
    texts = lookup.run(['_files', '_backup_gfs'], variables={})
    with open(_files.__file__, encoding='utf-8') as handle:
        assert texts[0] == handle.read()
    with open(os.path.join(ROOT, 'plugins', 'module_utils', '_backup_gfs.py'), encoding='utf-8') as handle:
        assert texts[1] == handle.read()


@pytest.mark.parametrize('name', ['../filter/redact', '_files.py', '/etc/passwd', 'no_such_file', ''])
def test_anything_but_a_module_utils_name_is_refused(name):
    lookup = lookup_loader.get('aiquiz.ops.module_utils_source')
    with pytest.raises(AnsibleLookupError) as err:
        lookup.run([name], variables={})
    assert 'module_utils_source' in str(err.value)
