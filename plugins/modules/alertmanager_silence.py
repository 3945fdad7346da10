#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: alertmanager_silence
short_description: Silence the alerts a planned change expects, and lift the silence when it is done
version_added: 0.1.0
description:
  - Creates or expires a silence through Alertmanager's API v2, identified by its author (O(created_by)), its
    O(comment) and its O(matchers), so that a second run with the same arguments finds the silence it made instead
    of stacking another one, and O(state=absent) lifts exactly the silences a run made and no one else's.
  - Used by C(playbooks/deploy.yml) around each app host's deploy (the alertmanager role's C(silence) entry point).
    Each Alertmanager of the inventory is asked on its own; they run without a gossip cluster.
  - There is no maintained module for Alertmanager's own API (community.grafana's C(grafana_silence) speaks to
    Grafana's Alertmanager, not to Prometheus' Alertmanager); this one adds idempotence by identity, matchers in the
    syntax of routes and amtool, checked before any request, and a silence that expires by itself after O(duration)
    should the run that made it die.
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: Reads the silences and reports what it would create or expire; writes nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  url:
    description:
      - Base URL of one Alertmanager, for example C(https://10.0.0.5:9093).
    type: str
    required: true
  username:
    description:
      - User of basic auth (the alertmanager role's O(aiquiz.ops.alertmanager#role:main:alertmanager_web_users)). Empty -
        no authentication.
    type: str
    default: ""
  password:
    description:
      - Password of O(username) (from vault). Never logged.
    type: str
    default: ""
  ca_path:
    description:
      - CA file that verifies Alertmanager's certificate (the own CA's root). Empty - the system's roots.
    type: path
  validate_certs:
    description:
      - Verify the certificate. Turn off only in a lab.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each answer.
    type: int
    default: 10
  state:
    description:
      - V(present) makes sure a live silence with these matchers, author and comment exists (it is left as it is when
        one does). V(absent) expires every live silence of this author and comment (and of these matchers, when given).
    type: str
    choices: [present, absent]
    default: present
  matchers:
    description:
      - 'Which alerts to mute, as in routes and amtool: C(label="value"), C(label=~"regex"), C(label!="value"),
        C(label!~"regex"); all must match. At least one must select by a non-empty value (C(=) or C(=~)).'
      - Required with O(state=present); with O(state=absent) it narrows the silences to lift.
    type: list
    elements: str
    default: []
  comment:
    description:
      - Why the alerts are muted, shown in Alertmanager's UI; with O(created_by), the silence's identity. Name the
        change and the host, for example C(deploy of release 1.2.0 on app1).
    type: str
    required: true
  created_by:
    description:
      - Author recorded in the silence; with O(comment), the silence's identity.
    type: str
    default: aiquiz.ops
  unreachable:
    description:
      - What to do when no Alertmanager answers at O(url) (connection refused or timed out, TLS handshake failed, CA
        file missing) - V(fail), or V(warn) and go on, for a change that must not wait for its monitoring (the first
        go-live deploys before phase 7 installs Alertmanager). An answer with an HTTP error (401, 400) always fails.
    type: str
    choices: [fail, warn]
    default: fail
  duration:
    description:
      - How long a new silence lasts (C(30m), C(2h), C(1h30m)); it expires by itself after that if nothing lifts it.
    type: str
    default: 30m
seealso:
  - name: Alertmanager API v2
    description: The silences API this module speaks.
    link: https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml
"""

EXAMPLES = r"""
- name: Mute app1's alerts, except HostDown, while it is deployed
  aiquiz.ops.alertmanager_silence:
    url: https://10.0.0.5:9093
    username: prometheus
    password: "{{ vault_alertmanager_password }}"
    ca_path: /etc/aiquiz/tls/monitoring-web/ca.pem
    matchers: ['instance="app1"', 'alertname!="HostDown"']
    comment: deploy of release 1.2.0 on app1
    duration: 30m
  delegate_to: mon1

- name: Lift it when the host is done
  aiquiz.ops.alertmanager_silence:
    url: https://10.0.0.5:9093
    username: prometheus
    password: "{{ vault_alertmanager_password }}"
    ca_path: /etc/aiquiz/tls/monitoring-web/ca.pem
    comment: deploy of release 1.2.0 on app1
    state: absent
  delegate_to: mon1
"""

RETURN = r"""
silence_id:
  description: With O(state=present), the id of the live silence (made now or found); empty in check mode when none exists.
  returned: always
  type: str
  sample: 4f7d1a56-2b7e-4a4b-9d0a-6a3c4b2d9e11
created:
  description: V(true) when this task made the silence.
  returned: always
  type: bool
expired:
  description: With O(state=absent), the ids of the silences this task expired (or would, in check mode).
  returned: always
  type: list
  elements: str
ends_at:
  description: When the live silence ends (UTC, ISO-8601); empty when none.
  returned: always
  type: str
  sample: '2026-12-05T13:30:00.000000Z'
"""

import datetime
import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError, open_url

from ansible_collections.aiquiz.ops.plugins.module_utils import _alertmanager


class ApiError(Exception):
    pass


class Unreachable(ApiError):
    pass


class Api:
    def __init__(self, params):
        self.base = params['url'].rstrip('/')
        self.params = params

    def call(self, method, path, body=None):
        p = self.params
        kwargs = {}
        if p['username']:
            kwargs.update(url_username=p['username'], url_password=p['password'], force_basic_auth=True)
        if p['ca_path']:
            kwargs['ca_path'] = p['ca_path']
        try:
            response = open_url(self.base + path, method=method, data=json.dumps(body) if body is not None else None,
                                headers={'Content-Type': 'application/json'}, validate_certs=p['validate_certs'],
                                timeout=p['timeout'], **kwargs)
            text = response.read()
        except HTTPError as exc:
            detail = exc.read().decode('utf-8', 'replace').strip() if hasattr(exc, 'read') else ''
            raise ApiError('%s %s answered %s %s' % (method, self.base + path, exc.code, detail[:300]))
        except (URLError, UrlsConnectionError, OSError, ValueError) as exc:
            raise Unreachable('%s %s failed: %s' % (method, self.base + path, getattr(exc, 'reason', exc)))
        return json.loads(text) if text.strip() else None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type='str', required=True),
            username=dict(type='str', default=''),
            password=dict(type='str', default='', no_log=True),
            ca_path=dict(type='path'),
            validate_certs=dict(type='bool', default=True),
            timeout=dict(type='int', default=10),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            matchers=dict(type='list', elements='str', default=[]),
            comment=dict(type='str', required=True),
            created_by=dict(type='str', default='aiquiz.ops'),
            duration=dict(type='str', default='30m'),
            unreachable=dict(type='str', choices=['fail', 'warn'], default='fail'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, silence_id='', created=False, expired=[], ends_at='')
    if not p['comment'].strip():
        module.fail_json(msg='comment must say why the alerts are muted (it is also the silence\'s identity)', **result)
    try:
        matchers = _alertmanager.parse_matchers(p['matchers']) if p['matchers'] else None
        seconds = _alertmanager.duration_seconds(p['duration'])
    except ValueError as exc:
        module.fail_json(msg='matchers/duration: %s' % exc, **result)
    if p['state'] == 'present' and matchers is None:
        module.fail_json(msg='matchers: at least one matcher is needed', **result)

    api = Api(p)
    try:
        live = _alertmanager.same_silences(api.call('GET', '/api/v2/silences') or [], p['created_by'], p['comment'],
                                           matchers)
        if p['state'] == 'present':
            if live:
                result.update(silence_id=live[0]['id'], ends_at=live[0].get('endsAt', ''))
            else:
                now = datetime.datetime.now(datetime.timezone.utc)
                ends = now + datetime.timedelta(seconds=seconds)
                result.update(changed=True, ends_at=_alertmanager.iso(ends))
                if not module.check_mode:
                    answer = api.call('POST', '/api/v2/silences', {
                        'matchers': matchers, 'startsAt': _alertmanager.iso(now), 'endsAt': _alertmanager.iso(ends),
                        'createdBy': p['created_by'], 'comment': p['comment']})
                    result.update(silence_id=answer['silenceID'], created=True)
        else:
            result['expired'] = [silence['id'] for silence in live]
            result['changed'] = bool(live)
            if not module.check_mode:
                for silence in live:
                    api.call('DELETE', '/api/v2/silence/%s' % silence['id'])
    except Unreachable as exc:
        # Lost half way through (after a first answer): always a failure.
        if p['unreachable'] == 'fail' or result['created'] or (result['expired'] and not module.check_mode):
            module.fail_json(msg=str(exc), **result)
        module.warn('no Alertmanager answers (%s): the alerts of "%s" are not %s there'
                    % (exc, p['comment'], 'silenced' if p['state'] == 'present' else 'unsilenced'))
        result.update(changed=False, expired=[], silence_id='', ends_at='')
    except ApiError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
