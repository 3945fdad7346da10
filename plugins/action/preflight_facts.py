# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for aiquiz.ops.preflight_facts: measure clock skew beyond the round trip.

The module reads the host clock once, somewhere between the moment the
controller sends it and the moment its answer is back. Only an offset outside
that window is skew, so a slow connection or a loaded controller never passes
for a wrong clock.
"""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase

from ansible_collections.aiquiz.ops.plugins.module_utils._preflight import evaluate_clock, failures


def skew_outside_window(host_time, sent, received):
    """Seconds the host clock is outside [sent, received]: 0 inside, positive when ahead."""
    if host_time > received:
        return host_time - received
    if host_time < sent:
        return host_time - sent
    return 0.0


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        measure = args.get('controller_time') is None
        sent = time.time()
        module = self._execute_module(module_name='aiquiz.ops.preflight_facts', module_args=args,
                                      task_vars=task_vars)
        received = time.time()
        result.update(module)
        observed = module.get('observed')
        if not measure or module.get('failed') or not isinstance(observed, dict) or observed.get('host_time') is None:
            return result
        skew = skew_outside_window(float(observed['host_time']), sent, received)
        max_skew = args.get('max_clock_skew')
        check = evaluate_clock(2.0 if max_skew is None else float(max_skew), {'clock_skew': skew})
        check['detail'] += ', measured over a %.3f s round trip' % (received - sent)
        checks = [c for c in module.get('checks', []) if c.get('check') != 'clock_skew'] + [check]
        observed['clock_skew'] = skew
        observed['clock_round_trip'] = received - sent
        result['checks'] = checks
        result['failures'] = failures(checks)
        return result
