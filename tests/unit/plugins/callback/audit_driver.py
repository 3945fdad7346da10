# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drive the aiquiz.ops.audit callback in this process with ansible-core's own
objects (Play, Task, Host, the task result Ansible hands to callbacks), so a
test can push any result through it and read the trail it writes."""

from __future__ import annotations

import json
import types

from ansible.executor.stats import AggregateStats
from ansible.executor.task_result import _RawTaskResult
from ansible.inventory.host import Host
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play import Play
from ansible.playbook.task import Task
from ansible.plugins.loader import callback_loader
from ansible.vars.manager import VariableManager


class RecordingDisplay:
    """Stands in for ansible's Display and keeps what the callback says."""

    verbosity = 0

    def __init__(self):
        self.warnings = []
        self.lines = []

    def warning(self, msg, *args, **kwargs):
        self.warnings.append(msg)

    def display(self, msg, *args, **kwargs):
        self.lines.append(msg)

    def vvv(self, msg, *args, **kwargs):
        self.lines.append(msg)


class Trail:
    """One playbook run of the callback, fed by hand."""

    def __init__(self, log_dir, loader=None, play_vars=None, host_vars=None):
        self.display = RecordingDisplay()
        self.callback = callback_loader.get('aiquiz.ops.audit')
        self.callback._display = self.display
        self.callback.set_options(direct={'log_dir': str(log_dir), 'summary': False})
        self.log_dir = log_dir
        self.loader = loader or DataLoader()
        self.variable_manager = VariableManager(loader=self.loader)
        self.host = Host('web1')
        for key, value in (host_vars or {}).items():
            self.host.set_variable(key, value)
        self.callback.v2_playbook_on_start(types.SimpleNamespace(_file_name=str(log_dir.parent / 'corpus.yml'), _loader=self.loader))
        self.play = Play.load({'name': 'Corpus', 'hosts': 'all', 'gather_facts': False, 'vars': play_vars or {}},
                              loader=self.loader, variable_manager=self.variable_manager)
        self.callback.v2_playbook_on_play_start(self.play)
        self.stats = AggregateStats()

    def task(self, name, args=None, action='ansible.builtin.debug', **keywords):
        data = dict(keywords, name=name)
        data[action] = args if args is not None else {}
        return Task.load(data, loader=self.loader, variable_manager=self.variable_manager)

    def send(self, task, data, kind='ok', task_fields=None):
        """Hand `data` to the callback as Ansible would: through the result's own censoring for no_log."""
        fields = task_fields if task_fields is not None else {'name': task.name, 'args': task.args, 'no_log': task.no_log}
        result = _RawTaskResult(self.host, task, dict(data), fields).as_callback_task_result()
        self.callback.v2_runner_on_start(self.host, task)
        if kind == 'failed':
            self.callback.v2_runner_on_failed(result, ignore_errors=True)
        elif kind == 'ok':
            self.callback.v2_runner_on_ok(result)
        else:
            getattr(self.callback, 'v2_runner_%s' % kind)(result)
        self.stats.increment('ok', 'web1')

    def finish(self):
        self.callback.v2_playbook_on_stats(self.stats)
        paths = sorted(self.log_dir.glob('*.jsonl'))
        assert len(paths) == 1, paths
        return paths[0].read_text(encoding='utf-8')


def events_of(text):
    return [json.loads(line) for line in text.splitlines()]


def where(text, canary):
    """Where canary appears in the trail: `event[action].field.path` for each leak."""
    found = []

    def walk(value, path):
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(key, path + '.<key>')
                walk(sub, '%s.%s' % (path, key))
        elif isinstance(value, list):
            for index, sub in enumerate(value):
                walk(sub, '%s[%d]' % (path, index))
        elif isinstance(value, str) and canary in value:
            found.append(path.lstrip('.'))

    for event in events_of(text):
        walk(event, '%s[%s]' % (event['event'], event.get('action', '')))
    return found
