# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The exporters role's mtail program (roles/exporters/files/aiquiz_edge.mtail) run by
mtail itself (`mtail --one_shot`) over access-log lines written in the edge role's
log_format aiquiz_edge_json, read from the template: the counters the alert rules read
come out by service and code, whatever the client puts in its request.

mtail comes from Debian's mtail package (tests/lab/setup.sh installs it); without it
these tests fail rather than skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
PROGRAM = os.path.join(ROOT, 'roles', 'exporters', 'files', 'aiquiz_edge.mtail')
TEMPLATE = os.path.join(ROOT, 'roles', 'edge', 'templates', 'aiquiz-edge.conf.j2')


def mtail():
    path = shutil.which('mtail')
    assert path, 'mtail is missing: apt-get install mtail (tests/lab/setup.sh installs it)'
    return path


def log_format():
    """The format string of log_format aiquiz_edge_json, its quoted pieces joined."""
    with open(TEMPLATE, encoding='utf-8') as handle:
        text = handle.read()
    block = re.search(r"log_format aiquiz_edge_json escape=json\n(.*?);\n", text, re.S).group(1)
    return ''.join(re.findall(r"'([^']*)'", block))


def escape_json(value):
    """nginx's escape=json: what json.dumps escapes, without the surrounding quotes."""
    return json.dumps(value)[1:-1]


def line(status, service, request_time='0.004', request='GET /api/ok HTTP/1.1', user_agent='curl/8',
         upstream_status='200'):
    """One access-log line as nginx writes it, from the template's format."""
    values = {
        'time_iso8601': '2026-12-04T21:00:00+00:00', 'remote_addr': '192.0.2.7', 'request': escape_json(request),
        'status': str(status), 'body_bytes_sent': '6', 'request_time': request_time,
        'upstream_addr': '127.0.0.1:8011', 'upstream_status': upstream_status,
        'upstream_response_time': request_time, 'request_id': 'f' * 32, 'host': 'edge.example.com',
        'aiquiz_service': service, 'http_user_agent': escape_json(user_agent),
    }
    out = re.sub(r'\$([a-z_0-9]+)', lambda match: values[match.group(1)], log_format())
    json.loads(out)  # a line of the format is JSON (canary_watch reads it so)
    return out


def run(tmp_path, lines, with_buckets=False):
    """mtail --one_shot over these lines: {(metric, service, code): value}, and with_buckets the
    latency buckets {(service, le): value}."""
    progs = tmp_path / 'progs'
    progs.mkdir()
    shutil.copy(PROGRAM, progs / 'aiquiz_edge.mtail')
    log = tmp_path / 'edge-access.log'
    log.write_text(''.join(entry + '\n' for entry in lines), encoding='utf-8')
    result = subprocess.run([mtail(), '--one_shot', '--one_shot_format=prometheus', '--logtostderr',
                             '--progs', str(progs), '--logs', str(log)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    found, buckets = {}, {}
    for row in result.stdout.splitlines():
        match = re.fullmatch(r'(aiquiz_edge_\w+)\{([^}]*)\} (\S+)', row)
        if match:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            if 'le' in labels:
                buckets[(labels['service'], labels['le'])] = float(match.group(3))
            else:
                found[(match.group(1), labels.get('service'), labels.get('code'))] = float(match.group(3))
    return (found, buckets) if with_buckets else found


def test_template_fields_the_program_reads():
    fields = json.loads(line(200, 'api'))
    assert (fields['status'], fields['request_time'], fields['service']) == (200, 0.004, 'api')


def test_requests_counted_by_service_and_code(tmp_path):
    lines = ([line(200, 'api')] * 7 + [line(404, 'api')] * 3 + [line(502, 'web', upstream_status='502')] * 4
             + [line(301, '')] * 2 + [line(429, 'api', request_time='0.000')])
    found = run(tmp_path, lines)
    counts = {(service, code): value for (metric, service, code), value in found.items()
              if metric == 'aiquiz_edge_requests_total'}
    assert counts == {('api', '200'): 7, ('api', '404'): 3, ('web', '502'): 4, ('', '301'): 2, ('api', '429'): 1}


def test_request_seconds_summed_by_service(tmp_path):
    found = run(tmp_path, [line(200, 'api', request_time='0.250'), line(500, 'api', request_time='1.500'),
                           line(200, 'web', request_time='0.000')])
    assert found[('aiquiz_edge_request_seconds_total', 'api', None)] == pytest.approx(1.75)
    assert found[('aiquiz_edge_request_seconds_total', 'web', None)] == 0


def test_client_text_never_becomes_a_label(tmp_path):
    """The request line and the user agent are the client's: JSON escapes their quotes, so
    a forged "status" or "service" in them is not read."""
    forged = line(200, 'web', request='GET /?"status":500,"bytes":1,"request_time":9,"service":"api" HTTP/1.1',
                  user_agent='x","service":"evil","status":503')
    found = run(tmp_path, [forged])
    assert found == {('aiquiz_edge_requests_total', 'web', '200'): 1,
                     ('aiquiz_edge_request_seconds_total', 'web', None): pytest.approx(0.004)}


def test_lines_of_another_format_are_not_counted(tmp_path):
    found = run(tmp_path, ['192.0.2.7 - - [04/Dec/2026:21:00:00 +0000] "GET / HTTP/1.1" 200 6 "-" "curl/8"',
                           line(200, 'api')])
    assert found[('aiquiz_edge_requests_total', 'api', '200')] == 1
    assert len([key for key in found if key[0] == 'aiquiz_edge_requests_total']) == 1


def test_latency_buckets_are_cumulative_and_end_with_every_request(tmp_path):
    """aiquiz_edge_request_duration_seconds_bucket: each request in every bucket whose bound is at
    least its time (a bound equal to it included), +Inf holding all; fast requests are not lost."""
    times = ['0.000', '0.004', '0.005', '0.030', '0.300', '0.900', '1.000', '7.000', '30.000']
    _found, buckets = run(tmp_path, [line(200, 'api', request_time=t) for t in times] + [line(200, 'web')],
                          with_buckets=True)
    api = {le: value for (service, le), value in buckets.items() if service == 'api'}
    assert api == {'0.005': 3, '0.01': 3, '0.025': 3, '0.05': 4, '0.1': 4, '0.25': 4, '0.5': 5, '1': 7,
                   '2.5': 7, '5': 7, '10': 8, '+Inf': 9}
    assert buckets[('web', '+Inf')] == 1 and buckets[('web', '0.005')] == 1
