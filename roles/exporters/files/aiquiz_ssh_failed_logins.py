# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# aiquiz.ops exporters role: failed SSH logins, from sshd's journal, for the
# node exporter's textfile collector. Installed as
# /usr/local/libexec/aiquiz/ssh_failed_logins; run by
# aiquiz-ssh-failed-logins.service (python3, the .prom path as argument).
"""Counts failed SSH logins: connections sshd closed before any user
authenticated, and connections it refused at once because their source had
just failed to authenticate.

sshd logs one line per failed login connection, whatever the method tried and
however many keys or passwords were refused in it (OpenSSH 9.2 on Debian 12
as "sshd", 10.0 on Debian 13 as "sshd-session"):
  Connection closed by authenticating user root 192.0.2.7 port 40870 [preauth]
  Connection closed by invalid user admin 192.0.2.7 port 40872 [preauth]
  Disconnected from authenticating user root 192.0.2.7 port 40874 [preauth]
  Disconnecting invalid user admin 192.0.2.7 port 40876: Too many authentication failures [preauth]
and, from OpenSSH 9.8 (Debian 13, PerSourcePenalties), one per connection of a
source penalised for failed authentication, which never reaches a login:
  drop connection #0 from [192.0.2.7]:33896 on [192.0.2.10]:22 penalty: failed authentication

aiquiz_ssh_failed_logins_total{kind="known_user"|"invalid_user"|"penalised"}
counts them since the service started (a counter: Prometheus' increase()
copes with the restart). The user name is the client's text and never
becomes a label.
"""

import json
import os
import re
import subprocess
import sys

FAILED = re.compile(r'(?:Connection closed by|Disconnected from|Disconnecting) (authenticating|invalid) user '
                    r'.* port \d+.*\[preauth\]')
PENALISED = re.compile(r'drop connection #\d+ from \S+ on \S+ penalty: failed authentication')
KINDS = ('invalid_user', 'known_user', 'penalised')
JOURNALCTL = ['journalctl', '--follow', '--lines=0', '--output=json', '--output-fields=MESSAGE',
              '--identifier=sshd', '--identifier=sshd-session']


def kind(message):
    """The kind of failed login a line of sshd's is, else None."""
    if not isinstance(message, str):
        return None
    match = FAILED.fullmatch(message)
    if match:
        return 'invalid_user' if match.group(1) == 'invalid' else 'known_user'
    return 'penalised' if PENALISED.fullmatch(message) else None


def render(counts):
    return ('# HELP aiquiz_ssh_failed_logins_total SSH connections closed before a user authenticated (sshd journal).\n'
            '# TYPE aiquiz_ssh_failed_logins_total counter\n'
            + ''.join('aiquiz_ssh_failed_logins_total{kind="%s"} %d\n' % (name, counts[name]) for name in KINDS))


def write(path, counts):
    """Atomically: the collector never reads half a file."""
    temporary = path + '.tmp'
    with open(temporary, 'w', encoding='utf-8') as handle:
        handle.write(render(counts))
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def main(argv):
    if len(argv) != 2 or not argv[1].endswith('.prom') or not os.path.isabs(argv[1]):
        sys.stderr.write('usage: ssh_failed_logins /absolute/path/of/the/textfile.prom\n')
        return 2
    path = argv[1]
    counts = dict.fromkeys(KINDS, 0)
    write(path, counts)
    with subprocess.Popen(JOURNALCTL, stdout=subprocess.PIPE, text=True, errors='replace') as journal:
        for line in journal.stdout:
            try:
                message = json.loads(line).get('MESSAGE')
            except ValueError:
                continue
            found = kind(message)
            if found:
                counts[found] += 1
                write(path, counts)
    # journalctl ended: systemd starts the service again.
    return journal.returncode or 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
