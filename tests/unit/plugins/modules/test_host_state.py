# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import sys

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.aiquiz.ops.plugins.module_utils import _host_state
from ansible_collections.aiquiz.ops.plugins.modules import host_state


def call(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            host_state.main()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def owner(path):
    st = os.lstat(path)
    return '%s:%s' % (pwd.getpwuid(st.st_uid)[0], grp.getgrgid(st.st_gid)[0])


def test_files_modes_and_links_are_described_with_type_mode_owner_and_checksum(capsys, tmp_path):
    conf = tmp_path / 'a.conf'
    conf.write_text('x = 1\n')
    conf.chmod(0o640)
    (tmp_path / 'link').symlink_to(conf)
    code, result = call(capsys, files=[str(conf), str(tmp_path / 'link'), str(tmp_path / 'none')],
                        modes=[str(tmp_path), str(conf)])
    assert code == 0 and result['changed'] is False
    sha1 = hashlib.sha1(b'x = 1\n').hexdigest()
    assert result['files'][str(conf)] == 'file 0640 %s %s' % (owner(str(conf)), sha1)
    assert result['files'][str(tmp_path / 'link')] == 'link %s -> %s (file 0640 %s)' % (
        owner(str(tmp_path / 'link')), conf, owner(str(conf)))
    assert result['files'][str(tmp_path / 'none')] == 'absent'
    assert result['modes'][str(conf)] == 'file 0640 %s' % owner(str(conf))
    assert result['modes'][str(tmp_path)].startswith('directory 0')


def test_a_change_by_hand_shows_in_the_next_answer(capsys, tmp_path):
    # The roles compare this answer with what they would write: a file edited
    # by hand must look different, so the task runs and puts it back.
    conf = tmp_path / 'sshd.conf'
    conf.write_text('PermitRootLogin no\n')
    before = call(capsys, files=[str(conf)])[1]['files'][str(conf)]
    conf.write_text('PermitRootLogin yes\n')
    after = call(capsys, files=[str(conf)])[1]['files'][str(conf)]
    conf.chmod(0o666)
    loosened = call(capsys, files=[str(conf)])[1]['files'][str(conf)]
    assert len({before, after, loosened}) == 3


def test_read_sysctl_groups_commands_and_a_missing_file(capsys, tmp_path):
    text = tmp_path / 'login.defs'
    text.write_text('UMASK 027\n')
    gid = os.getgid()
    code, result = call(capsys, read=[str(text), str(tmp_path / 'gone')], sysctl=['kernel.ostype', 'no.such.key'],
                        groups=[grp.getgrgid(gid)[0], 'no-such-group-aiquiz'],
                        commands={'py': [sys.executable, '-c', 'print("hi")'], 'missing': ['/nonexistent/tool']})
    assert code == 0
    assert result['read'] == {str(text): 'UMASK 027\n', str(tmp_path / 'gone'): None}
    assert result['sysctl']['kernel.ostype']['value'] == 'Linux'
    assert result['sysctl']['no.such.key'] is None
    assert result['groups'] == {grp.getgrgid(gid)[0]: gid, 'no-such-group-aiquiz': None}
    assert result['commands']['py'] == {'rc': 0, 'stdout': 'hi\n'}
    assert result['commands']['missing'] == {'rc': 127, 'stdout': ''}
    assert result['apt_cache_age'] is None


def test_packages_are_read_from_dpkg_and_unknown_names_say_so(monkeypatch):
    calls = []

    def fake_run(argv):
        calls.append(argv)
        return {'rc': 1, 'stdout': 'nftables\tinstalled\ntelnet\tconfig-files\n'}

    monkeypatch.setattr(_host_state, 'run', fake_run)
    assert _host_state.packages(['nftables', 'telnet', 'no-such-pkg']) == {
        'nftables': 'installed', 'telnet': 'config-files', 'no-such-pkg': 'unknown'}
    # One dpkg-query for every package, names after "--" so none is read as an option.
    assert len(calls) == 1 and calls[0][-4:] == ['--', 'nftables', 'telnet', 'no-such-pkg']
    assert _host_state.packages([]) == {}


def test_apt_cache_age_is_counted_from_the_success_stamp(monkeypatch, tmp_path):
    stamp = tmp_path / 'stamp'
    stamp.write_text('')
    os.utime(str(stamp), (1000, 1000))
    monkeypatch.setattr(_host_state.os.path, 'exists', lambda path: path.endswith('update-success-stamp'))
    real_stat = os.stat
    monkeypatch.setattr(_host_state.os, 'stat', lambda path: real_stat(str(stamp)))
    monkeypatch.setattr(_host_state.time, 'time', lambda: 4600)
    assert _host_state.apt_cache_age() == 3600


@pytest.mark.parametrize('args, words', [
    ({'files': ['etc/passwd']}, ['absolute', 'etc/passwd']),
    ({'read': ['~/.bashrc']}, ['absolute', '~/.bashrc']),
    ({'commands': {'bad': 'ls -l'}}, ['argv', 'bad']),
    ({'commands': {'empty': []}}, ['argv', 'empty']),
])
def test_bad_arguments_fail_naming_what_is_wrong(capsys, args, words):
    code, result = call(capsys, **args)
    assert code == 1 and result['failed'] is True
    assert all(word in result['msg'] for word in words)


def test_check_mode_gives_the_same_answer(capsys, tmp_path):
    conf = tmp_path / 'x'
    conf.write_text('1')
    normal = call(capsys, files=[str(conf)])[1]
    checked = call(capsys, files=[str(conf)], _ansible_check_mode=True)[1]
    assert normal['files'] == checked['files'] and checked['changed'] is False
