#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prometheus_web_config
short_description: Write the web configuration of Prometheus or Alertmanager (TLS, basic auth with bcrypt hashes)
version_added: 0.1.0
description:
  - Writes the file that Prometheus and Alertmanager read with C(--web.config.file) (the Prometheus exporter-toolkit's
    format) - C(tls_server_config) with O(tls_cert_file) and O(tls_key_file), and C(basic_auth_users) with one bcrypt
    hash for every user of O(users).
  - The hashes are made on the target host with C(python3-bcrypt). A user's existing hash is kept while it still
    verifies the password, so a re-run with the same passwords changes nothing; a new password gets a new hash.
  - The file holds hashes only. Passwords never appear on a command line, in the result or in a diff (the diff shows
    C(<bcrypt hash>) in place of every hash).
  - The new file is written beside the live one and checked with O(validate) first; a file that fails the check never
    replaces the live one.
  - Why not community.general.htpasswd - it writes Apache's htpasswd format (and needs passlib on the host), while
    Prometheus and Alertmanager read the exporter-toolkit's YAML with the TLS settings beside the hashes; it also
    cannot check the result with C(promtool check web-config) before it replaces the live file.
requirements:
  - python3-bcrypt on the target host (Debian package C(python3-bcrypt)).
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: Verifies the passwords against the existing hashes and reports whether the file would change.
  diff_mode:
    support: full
    details: Before and after with every hash masked.
  platform:
    support: full
    platforms: posix
options:
  path:
    description: The web configuration file, for example C(/etc/prometheus/web.yml).
    type: path
    required: true
  users:
    description:
      - The users of basic auth, each C(name) and C(password) (from vault). Empty - no basic auth.
      - Names are letters, digits and C(_.@-); a password is one line of at most 72 bytes (bcrypt reads no more).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      password:
        description: The password. Never logged or returned.
        type: str
        required: true
  tls_cert_file:
    description: Certificate (full chain) the server presents; empty together with O(tls_key_file) - plain HTTP.
    type: path
    default: ""
  tls_key_file:
    description: Its private key.
    type: path
    default: ""
  rounds:
    description:
      - bcrypt cost of a new hash. The server verifies a hash on every request it has not seen the password of;
        higher costs more CPU per scrape.
    type: int
    default: 10
  validate:
    description:
      - Command that checks the new file before it replaces the live one, C(%s) standing for the file, for example
        C(promtool check web-config %s). Split like a shell would, never run through one. Empty - no check.
    type: str
    default: ""
  owner:
    description: Owner of the file.
    type: str
    default: root
  group:
    description: Group of the file.
    type: str
    default: root
  mode:
    description: Mode of the file.
    type: raw
    default: "0640"
"""

EXAMPLES = r"""
- name: Prometheus' web configuration (TLS and basic auth), checked by promtool
  aiquiz.ops.prometheus_web_config:
    path: /etc/prometheus/web.yml
    tls_cert_file: /etc/aiquiz/tls/monitoring-web/fullchain.pem
    tls_key_file: /etc/aiquiz/tls/monitoring-web/privkey.pem
    users:
      - name: admin
        password: "{{ vault_prometheus_admin_password }}"
    owner: root
    group: prometheus
    mode: "0640"
    validate: promtool check web-config %s
"""

RETURN = r"""
rehashed:
  description: Users whose hash is new (or would be in check mode) - new users and changed passwords. No hash, no password.
  returned: always
  type: list
  elements: str
  sample: [admin]
users:
  description: The names of the users in the file.
  returned: always
  type: list
  elements: str
  sample: [admin, prometheus]
tls:
  description: Whether the file configures TLS.
  returned: always
  type: bool
  sample: true
tls_switched:
  description:
    - Whether an existing file switched TLS on or off. The server rereads the file on every request and TLS
      handshake (new certificates and users need nothing), but chooses between HTTP and HTTPS at its start only -
      restart it when this is true.
  returned: always
  type: bool
  sample: false
"""

import os
import shlex
import tempfile
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.aiquiz.ops.plugins.module_utils._web_config import (
    WebConfigError,
    build,
    existing_hashes,
    masked,
    parse,
    render,
)

try:
    import bcrypt
except ImportError:
    bcrypt = None
    BCRYPT_ERROR = traceback.format_exc()
else:
    BCRYPT_ERROR = None


def hasher(rounds):
    def make(password):
        return bcrypt.hashpw(password.encode('utf-8'), bcrypt.gensalt(rounds)).decode('ascii')
    return make


def checker(password, hashed):
    try:
        return bcrypt.checkpw(password.encode('utf-8'), hashed.encode('ascii'))
    except ValueError:
        return False


def validate(module, command, path):
    """Fail naming the check's own output when the new file does not pass it (the file holds no password)."""
    argv = [path if word == '%s' else word.replace('%s', path) for word in shlex.split(command)]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg='The new web configuration failed its check (%s, rc %d), the live one is kept: %s'
                         % (command, rc, (err or out).strip()[-800:]))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            users=dict(type='list', elements='dict', default=[], no_log=False, options=dict(
                name=dict(type='str', required=True),
                password=dict(type='str', required=True, no_log=True),
            )),
            tls_cert_file=dict(type='path', default=''),
            tls_key_file=dict(type='path', default=''),
            rounds=dict(type='int', default=10),
            validate=dict(type='str', default=''),
            owner=dict(type='str', default='root'),
            group=dict(type='str', default='root'),
            mode=dict(type='raw', default='0640'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not 4 <= params['rounds'] <= 31:
        module.fail_json(msg='rounds must be from 4 to 31, got %d' % params['rounds'])
    if params['users'] and bcrypt is None:
        module.fail_json(msg=missing_required_lib('bcrypt (Debian package python3-bcrypt)'), exception=BCRYPT_ERROR)
    path = params['path']
    before_text = ''
    if os.path.exists(path):
        with open(path, encoding='utf-8', errors='replace') as handle:
            before_text = handle.read()
    before = parse(before_text)
    try:
        data, rehashed = build(params['users'], existing_hashes(before), hasher(params['rounds']), checker,
                               params['tls_cert_file'], params['tls_key_file'])
    except WebConfigError as exc:
        module.fail_json(msg='%s: %s' % (path, exc))
    text = render(data)
    changed = text != before_text
    attributes = module.load_file_common_arguments(
        dict(path=path, owner=params['owner'], group=params['group'], mode=params['mode']))
    result = dict(rehashed=rehashed, users=sorted(data.get('basic_auth_users', {})),
                  tls='tls_server_config' in data)
    result['tls_switched'] = bool(before_text) and ('tls_server_config' in before) != result['tls']
    if changed:
        result['diff'] = dict(before_header=path, after_header=path,
                              before=masked(before) if before else before_text and '<not written by this module>\n',
                              after=masked(data, rehashed))
    if changed and not module.check_mode:
        directory = os.path.dirname(path) or '.'
        handle, temp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
        try:
            # Owner and mode before a byte of content, so that no one else reads it meanwhile.
            module.set_fs_attributes_if_different(dict(attributes, path=temp), False)
            with os.fdopen(handle, 'w', encoding='utf-8') as out:
                out.write(text)
            if params['validate']:
                validate(module, params['validate'], temp)
            module.atomic_move(temp, path)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
    changed = module.set_fs_attributes_if_different(attributes, changed)
    module.exit_json(changed=changed, **result)


if __name__ == '__main__':
    main()
