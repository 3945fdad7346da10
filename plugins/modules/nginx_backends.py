#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: nginx_backends
short_description: Set the servers one source gives several nginx upstreams, with one test and one graceful reload
version_added: 0.1.0
description:
  - Writes C(<dir>/<upstream>/<source>.conf) for every upstream in O(upstreams), one
    C(server address:port weight=N max_fails=M fail_timeout=T;) line per server. An empty list of servers removes
    the file. Files are replaced atomically (written beside, then renamed).
  - Only when a file changed - one test of all of them with the whole configuration before any of them lands
    (O(test_script), C(nginx -t) on a private mirror of C(/etc/nginx) with the new files in place; when nginx
    refuses, no file changes, nginx is not reloaded and the module fails with nginx's message), then the files, one
    graceful reload, and a wait until the workers of the previous configuration have exited (they finish their
    requests first), at most O(drain_timeout) seconds.
  - Each upstream's directory must exist (the edge role creates one per declared upstream, with an C(include) of
    its C(*.conf) files and a placeholder server); an undeclared upstream fails before any change.
  - The C(backends) entry point of the C(aiquiz.ops.edge) role calls it delegated to the edge host, one call per
    app host and edge host, however many upstreams the app host feeds.
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports which files would change (with their diff), and changes, tests and reloads nothing.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  dir:
    description:
      - Directory of the upstreams' server files, one sub-directory per upstream.
    type: path
    default: /etc/nginx/aiquiz/upstreams
  source:
    description:
      - Who the servers belong to, usually the app host's inventory name; the files' name. Letters, digits, C(_),
        C(.) and C(-).
    type: str
    required: true
  upstreams:
    description:
      - Upstream name to its list of servers from O(source). Each server is a dict with C(address) (host name or IP
        address, IPv6 with or without brackets), C(port) (1-65535) and C(weight) (an integer of 1 or more, default
        1). Leave a server out to give it no traffic; an empty list removes the source from that upstream.
      - Upstreams not named are left as they are.
    type: dict
    required: true
  max_fails:
    description:
      - C(max_fails) of every server line.
    type: int
    default: 3
  fail_timeout:
    description:
      - C(fail_timeout) of every server line, an nginx time such as V(10s); C(nginx -t) judges it.
    type: str
    default: 10s
  drain_timeout:
    description:
      - Seconds to wait after the reload for the old workers to exit. V(0) does not wait.
    type: float
    default: 30
  service:
    description:
      - The systemd unit of nginx, reloaded with C(systemctl reload).
    type: str
    default: nginx.service
  header:
    description:
      - A comment line put first in every file, for example Ansible's managed-file notice.
    type: str
    default: ''
  test_script:
    description:
      - Python script that tests the changed files with the whole nginx configuration before they land, run with the
        module's interpreter as C(<test_script> LIVE CANDIDATE ... --remove LIVE ...). The edge role installs it.
        Missing, the module fails before any change.
    type: path
    default: /usr/local/lib/aiquiz_nginx_test_candidate.py
notes:
  - Needs root on the edge host. Runs on the target with the Python standard library only.
seealso:
  - module: aiquiz.ops.health_gate
"""

EXAMPLES = r"""
- name: Give the edge the servers of this app host, colour blue only
  aiquiz.ops.nginx_backends:
    source: "{{ inventory_hostname }}"
    upstreams:
      quiz_web: [{address: 10.0.2.11, port: 8010, weight: 100}]
      quiz_api: [{address: 10.0.2.11, port: 8011, weight: 100}]
  delegate_to: edge1

- name: Canary - a tenth of this host's share to green
  aiquiz.ops.nginx_backends:
    source: app1
    upstreams:
      quiz_web:
        - {address: 10.0.2.11, port: 8010, weight: 90}
        - {address: 10.0.2.11, port: 8020, weight: 10}
  delegate_to: edge1

- name: Take app1 out of the api upstream
  aiquiz.ops.nginx_backends:
    source: app1
    upstreams:
      quiz_api: []
  delegate_to: edge1
"""

RETURN = r"""
files:
  description: The files that changed (or would change in check mode).
  returned: always
  type: list
  elements: str
  sample: [/etc/nginx/aiquiz/upstreams/quiz_web/app1.conf]
reloaded:
  description: Whether nginx was reloaded.
  returned: always
  type: bool
drain:
  description:
    - After a reload - C(drained) (every old worker exited within O(drain_timeout)), C(seconds) from the reload to
      the end of the wait, C(old_workers) and C(left) (old workers still finishing requests). Empty otherwise.
  returned: always
  type: dict
  sample: {drained: true, seconds: 0.41, old_workers: 2, left: 0}
"""

import os
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiquiz.ops.plugins.module_utils import _edge


def argument_spec():
    return dict(
        dir=dict(type='path', default='/etc/nginx/aiquiz/upstreams'),
        source=dict(type='str', required=True),
        upstreams=dict(type='dict', required=True),
        max_fails=dict(type='int', default=3),
        fail_timeout=dict(type='str', default='10s'),
        drain_timeout=dict(type='float', default=30),
        service=dict(type='str', default='nginx.service'),
        header=dict(type='str', default=''),
        test_script=dict(type='path', default='/usr/local/lib/aiquiz_nginx_test_candidate.py'),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    errors = _edge.validate(p['upstreams'], p['source'], p['fail_timeout'], p['max_fails'], p['drain_timeout'])
    if errors:
        module.fail_json(msg='Invalid backends of %s: %s' % (p['source'], '; '.join(errors)))
    try:
        changes = _edge.plan(p['dir'], p['source'], p['upstreams'], p['max_fails'], p['fail_timeout'], p['header'])
    except LookupError as exc:
        module.fail_json(msg='upstream %s is not declared on the edge host (no directory %s/%s): apply the edge role '
                             'there first, with this upstream in edge_upstreams' % (exc.args[0], p['dir'], exc.args[0]))
    files = [c['path'] for c in changes]
    diff = [{'before_header': c['path'], 'after_header': c['path'],
             'before': c['before'] or '', 'after': c['after'] or ''} for c in changes]
    result = dict(changed=bool(changes), files=files, reloaded=False, drain={}, diff=diff)
    if not changes or module.check_mode:
        module.exit_json(**result)

    if not os.path.isfile(p['test_script']):
        result['changed'] = False
        module.fail_json(msg='the candidate test %s is missing on the edge host: apply the edge role there first '
                             '(nothing was changed)' % p['test_script'], **result)
    # Tested before they land: the live files never hold what nginx refuses.
    rc, out = _edge.test_candidates(changes, [sys.executable, p['test_script']])
    if rc != 0:
        result['changed'] = False
        module.fail_json(msg='nginx -t refused it; %s %s unchanged and nginx was not reloaded: %s'
                             % (', '.join(files), 'is' if len(files) == 1 else 'are', out), **result)
    _edge.apply(changes)
    error, info = _edge.reload_and_drain(p['service'], p['drain_timeout'])
    result.update(reloaded=bool(info), drain=info)
    if error:
        module.fail_json(msg=error, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
