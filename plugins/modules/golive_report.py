#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: golive_report
short_description: Write the go-live report (HTML and JSON) and a SHA-256 evidence manifest chained run to run
version_added: 0.1.0
description:
  - With O(state=present), writes the evidence of one go-live run into a directory of its own under O(dest),
    named after the run (the audit trail's file name, or O(run_id)) - C(report.html), a self-contained page (no
    external assets; the plots are inline SVG), C(report.json), the same data, C(audit.jsonl), a copy of the audit
    trail read, and C(MANIFEST.json), the SHA-256 of each of these files and the SHA-256 of the previous run's
    manifest, so that an edited or removed file, or a removed run, shows.
  - 'The report holds: the phases (plays) with their wall time, hosts, changed and failed counts, the changed
    tasks per host, the failures and the preflight role''s summary line of each host, all read from the audit
    trail of C(aiquiz.ops.audit); who ran it (the AWX job
    id and user, or the controller user); the git commits of the collection and of the inventory; the post-launch
    checks (the public URL from M(aiquiz.ops.golive_probe), each app host''s readiness, the last verified backup of
    each data host, every certificate''s expiry, a synthetic transaction through the public URL from
    M(aiquiz.ops.golive_synthetic), the Prometheus targets and firing alerts, the last disaster-recovery drill); a
    verdict; and a sign-off table.'
  - A check whose source is missing (a host skipped, no catalogue, no certificate) is marked V(missing) with the
    reason, it does not fail the module. The verdict is V(fail) when a check fails or a task failed, V(incomplete)
    when a check is missing or warns, V(pass) otherwise. The module does not fail on the verdict; the caller decides.
  - With O(state=verify), writes nothing and checks every run under O(dest) against its manifest and each manifest
    against the link the next run holds; it fails, listing the problems, when a file was edited, removed or added,
    or a run or a manifest was removed or changed.
  - Files are written with mode C(0600), directories with C(0700) (an existing looser O(dest) is narrowed).
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: Builds the report and the manifest and returns them, without writing anything.
  diff_mode:
    support: full
    details: Shows the run's manifest (file names and SHA-256) before and after.
  platform:
    support: full
    platforms: posix
options:
  state:
    description: V(present) writes this run's report and evidence; V(verify) checks the whole chain under O(dest).
    type: str
    choices: [present, verify]
    default: present
  dest:
    description: Directory of the evidence, one subdirectory per run.
    type: path
    required: true
  audit_trail:
    description:
      - The audit trail file, or the directory of C(aiquiz.ops.audit) (its C(log_dir)) in which the file of the running
        playbook is found by the controller's process id (the newest file when none matches).
      - Without a trail, phases, timings and changes are marked unknown.
    type: path
  run_id:
    description:
      - Name of the run's directory. Defaults to the audit trail's file name without C(.jsonl)
        (C(<UTC time>-<playbook>-<pid>)), or the UTC time without a trail. It must begin with C(YYYYmmddTHHMMSSZ).
    type: str
  title:
    description: Title of the report.
    type: str
    default: AI Quiz go-live report
  public_url:
    description: The registered result of M(aiquiz.ops.golive_probe). Missing or not passed, the check fails.
    type: dict
  readiness:
    description: Host name to the registered result of M(aiquiz.ops.health_gate) on that app host.
    type: dict
    default: {}
  backups:
    description: Host name to the registered result of M(aiquiz.ops.backup_catalogue) (V(list)) on that data host.
    type: dict
    default: {}
  certificates:
    description: Host name to the registered result of M(aiquiz.ops.certificate_inventory) on that host.
    type: dict
    default: {}
  synthetic:
    description:
      - The registered result of M(aiquiz.ops.golive_synthetic) (create a quiz through the public URL, read it back).
        A failed step fails the check; a skipped result (disabled, or check mode) is V(missing).
      - Not given, the check is V(missing).
    type: dict
  monitoring:
    description:
      - 'The Prometheus API answers, as C({host, url, targets, alerts}): C(targets) and C(alerts) the registered
        results of M(ansible.builtin.uri) for C(/api/v1/targets) and C(/api/v1/alerts). The check lists the targets up
        and down per job and the firing alerts; a target down or a C(critical) alert firing warns.'
      - A skipped result (no monitoring host) or an answer that is not Prometheus' success is V(missing), with the
        reason. Not given, the check is V(missing).
    type: dict
  drill:
    description:
      - The disaster-recovery drill check. The newest report of C(playbooks/dr-drill.yml) matching O(drill.path) is
        read on the host that runs the module; its C(drill_at), C(rto_seconds) and C(rpo_seconds) (and
        C(rto_all_seconds), shown) are checked. An old drill or an RTO or RPO over its aim warns; no report is
        V(missing). Not given, the check is V(missing).
    type: dict
    suboptions:
      path:
        description: The drill report (C(dr-drill-report.json)), or a glob of several (the newest is read). Empty, the check is V(missing).
        type: str
        default: ''
      max_age_days:
        description: A drill older than this many days warns.
        type: float
        default: 35
      rto_seconds:
        description: The RTO aim (seconds to a serving database); above it warns.
        type: float
        default: 300
      rpo_seconds:
        description: The RPO aim (seconds of writes lost); above it warns.
        type: float
        default: 60
  hardening:
    description:
      - Host name to the registered result of M(aiquiz.ops.host_state) on that host, asked for the commands C(sshd)
        (C(sshd -T)) and C(nft_input) (C(nft list chain inet aiquiz_filter input)), the units C(nftables.service),
        C(unattended-upgrades.service) and C(chrony.service), and the kernel settings C(kernel.randomize_va_space),
        C(fs.suid_dumpable) and C(net.ipv4.conf.all.accept_redirects).
      - 'What each host is now, not what the roles meant - root or password SSH logins allowed, or no firewall with an
        input policy of drop, fail; unattended upgrades not enabled, chrony not running or a kernel setting off warn.'
    type: dict
    default: {}
  backup_max_age_hours:
    description: The last verified backup of each kind must have ended within this many hours.
    type: float
    default: 26
  certificate_min_days:
    description: A certificate with fewer days left fails the certificate check.
    type: int
    default: 21
  collection_path:
    description: A path inside the collection's git checkout, for its commit.
    type: path
  inventory_path:
    description: A path inside the inventory's git checkout, for its commit.
    type: path
  signoff:
    description: The roles who sign the report, one row each.
    type: list
    elements: str
    default: [Release manager, Service owner, Security]
notes:
  - The evidence is meant to be kept; point O(dest) at a persistent location under AWX (the job's home is thrown away).
  - The manifest chain shows a change to any run but the newest; record RV(manifest_sha256) elsewhere (the AWX job
    output keeps it) to pin the newest one too.
seealso:
  - module: aiquiz.ops.golive_probe
  - module: aiquiz.ops.golive_synthetic
"""

EXAMPLES = r"""
- name: Write the go-live report
  aiquiz.ops.golive_report:
    dest: /srv/aiquiz-evidence
    audit_trail: /srv/aiquiz-audit
    public_url: "{{ golive_public_url }}"
    collection_path: "{{ playbook_dir }}"
    inventory_path: "{{ inventory_dir }}"
  delegate_to: localhost
  run_once: true
  register: golive_report

- name: Check that no evidence was changed or removed
  aiquiz.ops.golive_report:
    dest: /srv/aiquiz-evidence
    state: verify
  delegate_to: localhost
"""

RETURN = r"""
run_id:
  description: The run's directory name (null with O(state=verify)).
  returned: always
  type: str
  sample: 20261204T170000Z-go-live-4242
directory:
  description: The run's directory (null with O(state=verify)).
  returned: always
  type: str
  sample: /srv/aiquiz-evidence/20261204T170000Z-go-live-4242
html:
  description: Path of the HTML report.
  returned: state=present
  type: str
json:
  description: Path of the JSON report.
  returned: state=present
  type: str
verdict:
  description: V(pass), V(incomplete) or V(fail).
  returned: state=present
  type: str
  sample: pass
checks:
  description:
    - Each check with C(id), C(title), C(status) (V(pass), V(warn), V(missing), V(fail)), C(summary) and C(items).
    - 'The checks, in order: C(public_url), C(readiness), C(backups), C(certificates), C(synthetic), C(monitoring),
      C(drill), C(hardening). C(report.json) also holds the synthetic steps (C(transaction)), the targets per job and the firing
      alerts (C(monitoring)) and the drill''s figures (C(drill)).'
  returned: state=present
  type: list
  elements: dict
manifest:
  description: The run's manifest (C(files) name to SHA-256, C(previous) run and its manifest's SHA-256).
  returned: state=present
  type: dict
manifest_sha256:
  description: SHA-256 of the run's manifest (with O(state=verify), of the newest one).
  returned: always
  type: str
runs:
  description: The runs checked, oldest first.
  returned: state=verify
  type: list
  elements: str
problems:
  description: What the verification found (empty when the chain is intact).
  returned: state=verify
  type: list
  elements: str
"""

import os
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.aiquiz.ops.plugins.module_utils import _files
from ansible_collections.aiquiz.ops.plugins.module_utils import _golive_report as _report


def argument_spec():
    return dict(
        state=dict(type='str', default='present', choices=['present', 'verify']),
        dest=dict(type='path', required=True),
        audit_trail=dict(type='path'),
        run_id=dict(type='str'),
        title=dict(type='str', default='AI Quiz go-live report'),
        public_url=dict(type='dict'),
        readiness=dict(type='dict', default={}),
        backups=dict(type='dict', default={}),
        certificates=dict(type='dict', default={}),
        synthetic=dict(type='dict'),
        monitoring=dict(type='dict'),
        hardening=dict(type='dict', default={}),
        drill=dict(type='dict', options=dict(
            path=dict(type='str', default=''),
            max_age_days=dict(type='float', default=35),
            rto_seconds=dict(type='float', default=300),
            rpo_seconds=dict(type='float', default=60),
        )),
        backup_max_age_hours=dict(type='float', default=26),
        certificate_min_days=dict(type='int', default=21),
        collection_path=dict(type='path'),
        inventory_path=dict(type='path'),
        signoff=dict(type='list', elements='str', default=['Release manager', 'Service owner', 'Security']),
    )


def _private_dir(path, check_mode):
    """Whether path must be created or narrowed to 0700; done unless check_mode."""
    if os.path.isdir(path):
        if os.stat(path).st_mode & 0o777 == _report.DIR_MODE:
            return False
        if not check_mode:
            os.chmod(path, _report.DIR_MODE)
        return True
    if not check_mode:
        _files.ensure_parent(os.path.join(path, 'x'), _report.DIR_MODE)
    return True


def present(module):
    params = module.params
    if params['run_id'] and not _report.RUN_ID.match(params['run_id']):
        module.fail_json(msg='run_id must begin with the UTC time YYYYmmddTHHMMSSZ and hold only letters, digits, '
                             '".", "_", "-", got %r' % params['run_id'])
    now = _report.utc_now()
    report, trail = _report.build_report(params, module.run_command, now)
    run_id = report['run']['id']
    directory = os.path.join(params['dest'], run_id)
    files = {'report.json': _report.dump(report)}
    if trail:
        with open(trail, encoding='utf-8') as handle:
            files['audit.jsonl'] = handle.read()
    previous = _report.previous_link(params['dest'], run_id)
    files['report.html'] = _report.render_html(report, _report.manifest_for(run_id, files, previous, now))
    manifest = _report.manifest_for(run_id, files, previous, now)
    manifest_text = _report.dump(manifest)

    before_path = os.path.join(directory, _report.MANIFEST)
    before = ''
    if os.path.isfile(before_path):
        with open(before_path, encoding='utf-8') as handle:
            before = handle.read()
    changed = _private_dir(params['dest'], module.check_mode)
    changed = _private_dir(directory, module.check_mode) or changed
    changed = changed or before != manifest_text
    if not module.check_mode:
        for name, text in sorted(files.items()):
            _files.write_atomic(os.path.join(directory, name), text, mode=_report.FILE_MODE,
                                dir_mode=_report.DIR_MODE)
        # The manifest last: a run cut short leaves files without one, which verify names.
        _files.write_atomic(before_path, manifest_text, mode=_report.FILE_MODE, dir_mode=_report.DIR_MODE)
    result = dict(changed=changed, run_id=run_id, directory=directory,
                  html=os.path.join(directory, 'report.html'), json=os.path.join(directory, 'report.json'),
                  verdict=report['verdict'],
                  checks=[dict((k, c[k]) for k in ('id', 'title', 'status', 'summary', 'items')) for c in report['checks']],
                  manifest=manifest, manifest_sha256=_report.sha256_text(manifest_text))
    if module._diff:
        result['diff'] = dict(before=before, after=manifest_text, before_header=before_path, after_header=before_path)
    module.exit_json(**result)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        if module.params['state'] == 'verify':
            problems, checked, latest = _report.verify(module.params['dest'])
            result = dict(changed=False, run_id=None, directory=None, runs=checked, problems=problems,
                          manifest_sha256=latest)
            if problems:
                module.fail_json(msg='the evidence under %s does not match its manifests: %s' % (
                    module.params['dest'], '; '.join(problems)), **result)
            module.exit_json(**result)
        present(module)
    except (OSError, _report.ReportError) as exc:
        module.fail_json(msg='cannot write the go-live report under %s: %s' % (module.params['dest'], exc),
                         exception=traceback.format_exc())


if __name__ == '__main__':
    main()
