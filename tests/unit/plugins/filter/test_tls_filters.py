# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tls role's decisions: every message of the certificate check, the
normalised certificates, every rotation reason and the report. The texts are
those of the Jinja programs the filters replaced (roles/tls/tasks)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.tls import (
    FilterModule, tls_certificate_errors, tls_certificates_normalised, tls_reader_errors, tls_report,
    tls_rotation_reasons, tls_summary)

UNITS = ['nginx', 'haproxy', 'postgresql', 'redis', 'rabbitmq']
WEB = 'certificate "web" (tls_certificates[0])'


def cert(**fields):
    base = {'name': 'web', 'sans': ['web.example.com', 'IP:192.0.2.1'], 'issuer': 'own_ca'}
    base.update(fields)
    return {key: value for key, value in base.items() if value is not None}


def errors(certs, **options):
    kwargs = {'names': [], 'renew_before_days': 30, 'tls_dir': '/etc/aiquiz/tls', 'rsa_min_size': 2048,
              'own_ca_valid_days': 90, 'ca_passphrase_set': True, 'acme_challenge': 'http-01',
              'dns01_hook_set': False, 'consumer_units': UNITS}
    kwargs.update(options)
    return tls_certificate_errors(certs, **kwargs)


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {'tls_certificate_errors', 'tls_certificates_normalised',
                                             'tls_rotation_reasons', 'tls_report', 'tls_summary', 'tls_reader_errors'}


@pytest.mark.parametrize('certs', [
    [],
    [cert()],
    [cert(sans=['DNS:*.example.com', 'IP:2001:db8::1', '10.0.0.5', 'localhost'], key_type='rsa', key_size=4096,
          valid_days=30, consumers=['nginx', 'redis'], mode='0640', owner='www-data', group='ssl-cert')],
    [cert(issuer='acme', key_size=384), cert(name='db.1_x-Y', issuer='acme', mode='600')],
])
def test_a_clean_declaration_has_no_error(certs):
    assert errors(certs) == []


def test_renew_before_days_below_one():
    assert errors([], renew_before_days=0) == ['tls_renew_before_days: 0 must be 1 or more']


def test_relative_tls_dir():
    assert errors([], tls_dir='etc/tls') == ['tls_dir: "etc/tls" is not an absolute path']


@pytest.mark.parametrize('name', ['-web', 'we b', '', '.x'])
def test_bad_name(name):
    assert errors([cert(name=name)]) == [
        'tls_certificates[0].name: "%s" must be a letter or digit then letters, digits, ".", "_" or "-"' % name]


def test_missing_name_is_empty():
    assert errors([{'sans': ['a.example'], 'issuer': 'own_ca'}])[0].startswith('tls_certificates[0].name: ""')


def test_name_declared_twice():
    assert errors([cert(), cert()]) == ['tls_certificates[1].name: "web" is declared twice']


@pytest.mark.parametrize('sans', [[], 'web.example.com', None])
def test_sans_not_a_list_of_names(sans):
    assert errors([cert(sans=sans) if sans is not None else {'name': 'web', 'issuer': 'own_ca'}]) == [
        '%s sans: must be a list of at least one name or IP:address' % WEB]


@pytest.mark.parametrize('san', ['IP:web.example.com', 'DNS:192.0.2.1', 'bad_name', 'exa mple.com', '10.0.0.300',
                                 'DNS:-x.com', 'IP:1:2:3:4::5:6:7:8', 'IP:10.0.0.0/8', 5])
def test_bad_san(san):
    assert errors([cert(sans=['web.example.com', san])]) == [
        '%s sans[1]: "%s" is not a DNS name or an IP address' % (WEB, san)]


def test_unknown_issuer():
    assert errors([cert(issuer='letsencrypt')]) == [
        '%s issuer: "letsencrypt" is not a known issuer (own_ca, acme)' % WEB]


def test_rsa_key_below_policy():
    assert errors([cert(key_type='rsa', key_size=1024)]) == [
        '%s key_size: 1024 is below the policy for RSA keys (at least 2048 bits)' % WEB]
    assert errors([cert(key_type='rsa', key_size=2048)], rsa_min_size=3072) == [
        '%s key_size: 2048 is below the policy for RSA keys (at least 3072 bits)' % WEB]


@pytest.mark.parametrize('size', [521, 'abc', 0])
def test_ecdsa_size_not_allowed(size):
    assert errors([cert(key_size=size)]) == ['%s key_size: %s is not allowed for ECDSA keys (256 or 384)' % (WEB, size)]


def test_unknown_key_type():
    assert errors([cert(key_type='dsa')]) == ['%s key_type: "dsa" is not rsa or ecdsa' % WEB]


def test_own_ca_valid_days_below_one():
    assert errors([cert(valid_days=0)]) == ['%s valid_days: 0 must be 1 or more' % WEB]
    assert errors([cert()], own_ca_valid_days='x') == ['%s valid_days: 0 must be 1 or more' % WEB]


def test_own_ca_valid_days_shorter_than_renewal():
    assert errors([cert(valid_days=10)]) == [
        '%s valid_days: 10 is shorter than tls_renew_before_days (30): it would be renewed on every run' % WEB]


def test_own_ca_needs_the_passphrase():
    assert errors([cert()], ca_passphrase_set=False) == [
        '%s issuer: own_ca needs tls_ca_passphrase (8 characters or more, from vault)' % WEB]
    assert errors([cert(issuer='acme')], ca_passphrase_set=False) == []


def test_unknown_challenge():
    assert errors([cert(issuer='acme', challenge='tls-alpn-01')]) == [
        '%s challenge: "tls-alpn-01" is not http-01 or dns-01' % WEB]


def test_dns01_needs_a_hook():
    expected = ['%s challenge: dns-01 needs tls_acme_dns01_hook (a task file that publishes TXT records)' % WEB]
    assert errors([cert(issuer='acme', challenge='dns-01')]) == expected
    assert errors([cert(issuer='acme')], acme_challenge='dns-01') == expected
    assert errors([cert(issuer='acme', challenge='dns-01', sans=['*.example.com'])], dns01_hook_set=True) == []


@pytest.mark.parametrize('san', ['*.example.com', 'DNS:*.example.com'])
def test_wildcard_needs_dns01(san):
    assert errors([cert(issuer='acme', sans=[san])]) == ['%s challenge: a wildcard name needs dns-01' % WEB]


def test_unknown_consumer():
    assert errors([cert(consumers=['nginx', 'apache'])]) == [
        '%s consumers[1]: "apache" is not in tls_consumer_units (nginx, haproxy, postgresql, redis, rabbitmq)' % WEB]


@pytest.mark.parametrize('mode', ['0o600', 384, 'u=rw', '06000'])
def test_mode_not_octal(mode):
    assert errors([cert(mode=mode)]) == ['%s mode: "%s" is not an octal file mode such as "0600"' % (WEB, mode)]


@pytest.mark.parametrize('mode', ['0644', '0601', '777'])
def test_mode_readable_by_every_user(mode):
    assert errors([cert(mode=mode)]) == ['%s mode: "%s" would let every user read the private key' % (WEB, mode)]


def test_name_not_declared():
    assert errors([cert(), cert(name='db')], names=['db', 'edge']) == [
        'tls_names: "edge" is not a declared certificate (web, db)']


def test_every_error_at_once_in_order():
    assert errors([cert(name='x', key_type='rsa', key_size=1024, issuer='acme', challenge='dns-01', consumers=['y'],
                        mode='0777')], names=['nope'], renew_before_days=0) == [
        'tls_renew_before_days: 0 must be 1 or more',
        'certificate "x" (tls_certificates[0]) key_size: 1024 is below the policy for RSA keys (at least 2048 bits)',
        'certificate "x" (tls_certificates[0]) challenge: dns-01 needs tls_acme_dns01_hook'
        ' (a task file that publishes TXT records)',
        'certificate "x" (tls_certificates[0]) consumers[0]: "y" is not in tls_consumer_units'
        ' (nginx, haproxy, postgresql, redis, rabbitmq)',
        'certificate "x" (tls_certificates[0]) mode: "0777" would let every user read the private key',
        'tls_names: "nope" is not a declared certificate (x)']


@pytest.mark.parametrize('bad', ['web', {'name': 'web'}, ['web']])
def test_input_not_a_list_of_dicts(bad):
    with pytest.raises(AnsibleFilterError):
        tls_certificate_errors(bad)


def normalised(certs, **options):
    kwargs = {'names': [], 'tls_dir': '/etc/aiquiz/tls', 'rsa_min_size': 2048, 'own_ca_valid_days': 90,
              'acme_challenge': 'http-01'}
    kwargs.update(options)
    return tls_certificates_normalised(certs, **kwargs)


def test_normalised_defaults():
    assert normalised([cert()]) == [{
        'name': 'web', 'sans': ['DNS:web.example.com', 'IP:192.0.2.1'], 'common_name': 'web.example.com',
        'issuer': 'own_ca', 'key_type': 'ecdsa', 'key_size': 256, 'valid_days': 90, 'challenge': 'http-01',
        'consumers': [], 'owner': 'root', 'group': 'root', 'mode': '0600', 'dir': '/etc/aiquiz/tls/web'}]


def test_normalised_san_prefixes_and_lower_case():
    out = normalised([cert(sans=['Web.Example.COM', 'DNS:*.Example.com', 'IP:2001:DB8::1', '2001:DB8::A',
                                 '192.0.2.7', 'DNS:192.0.2.8'])])
    assert out[0]['sans'] == ['DNS:web.example.com', 'DNS:*.example.com', 'IP:2001:db8::1', 'IP:2001:db8::a',
                              'IP:192.0.2.7', 'IP:192.0.2.8']
    assert out[0]['common_name'] == 'web.example.com'


def test_normalised_common_name_of_an_address():
    assert normalised([cert(sans=['IP:10.0.0.5'])])[0]['common_name'] == '10.0.0.5'


def test_normalised_fields_given():
    out = normalised([cert(common_name='Quiz Web', key_type='rsa', valid_days='45', challenge='dns-01',
                           consumers=['nginx'], owner='www-data', group='ssl-cert', mode=640)], tls_dir='/srv/tls')
    assert out[0] == {
        'name': 'web', 'sans': ['DNS:web.example.com', 'IP:192.0.2.1'], 'common_name': 'Quiz Web',
        'issuer': 'own_ca', 'key_type': 'rsa', 'key_size': 2048, 'valid_days': 45, 'challenge': 'dns-01',
        'consumers': ['nginx'], 'owner': 'www-data', 'group': 'ssl-cert', 'mode': '640', 'dir': '/srv/tls/web'}


def test_normalised_role_defaults_and_selection():
    out = normalised([cert(key_type='rsa'), cert(name='db', key_size='384'), cert(name='edge', issuer='acme')],
                     names=['db', 'edge'], rsa_min_size=3072, own_ca_valid_days=30, acme_challenge='dns-01')
    assert [c['name'] for c in out] == ['db', 'edge']
    assert [(c['key_size'], c['valid_days'], c['challenge']) for c in out] == [(384, 30, 'dns-01'), (256, 30, 'dns-01')]
    assert normalised([cert(key_type='rsa')], rsa_min_size=3072)[0]['key_size'] == 3072


CERT = {'name': 'web', 'sans': ['DNS:web.example.com', 'IP:192.0.2.1'], 'issuer': 'own_ca', 'key_type': 'ecdsa',
        'key_size': 256}
ROOT_CN = 'aiquiz.ops root CA'
INT_CN = 'aiquiz.ops intermediate CA'


def info(**fields):
    base = {'not_after': '20270101000000Z', 'valid_at': {'renew': True},
            'subject_alt_name': ['DNS:web.example.com', 'IP:192.0.2.1'], 'public_key_type': 'ECC',
            'public_key_data': {'exponent_size': 256, 'curve': 'secp256r1'}, 'issuer': {'commonName': ROOT_CN}}
    base.update(fields)
    return base


def reasons(current, cert=None, **options):
    kwargs = {'force': False, 'renew_before_days': 30, 'key_exists': True, 'own_ca_signing_cn': ROOT_CN,
              'own_ca_cns': [ROOT_CN, INT_CN]}
    kwargs.update(options)
    return tls_rotation_reasons(current, cert or CERT, **kwargs)


def test_no_reason():
    assert reasons(info()) == []
    # SANs in another order and case are the same SANs.
    assert reasons(info(subject_alt_name=['IP:192.0.2.1', 'DNS:WEB.example.com'])) == []
    rsa = dict(CERT, key_type='rsa', key_size=2048)
    assert reasons(info(public_key_type='RSA', public_key_data={'size': 2048, 'exponent': 65537}), rsa) == []
    assert reasons(info(issuer={'commonName': 'R3'}), dict(CERT, issuer='acme')) == []


def test_no_certificate_yet_is_the_only_reason():
    missing = {'failed': True, 'msg': 'The file /etc/aiquiz/tls/web/cert.pem does not exist'}
    assert reasons(missing) == ['no certificate yet']
    assert reasons(missing, force=True, key_exists=False) == ['no certificate yet']


def test_forced():
    assert reasons(info(), force=True) == ['forced']


def test_expires_soon():
    assert reasons(info(valid_at={'renew': False}), renew_before_days=45) == [
        'expires within 45 days (20270101000000Z)']


@pytest.mark.parametrize('sans', [['DNS:web.example.com'], [], None])
def test_sans_changed(sans):
    assert reasons(info(subject_alt_name=sans)) == ['SANs changed']


@pytest.mark.parametrize('current, key_type, key_size', [
    (info(public_key_type='RSA', public_key_data={'size': 2048}), 'ecdsa', 256),
    (info(public_key_data={'exponent_size': 384}), 'ecdsa', 256),
    (info(public_key_data={}), 'ecdsa', 256),
    (info(public_key_type='RSA', public_key_data={'size': 2048}), 'rsa', 3072),
])
def test_key_type_or_size_changed(current, key_type, key_size):
    assert reasons(current, dict(CERT, key_type=key_type, key_size=key_size)) == ['key type or size changed']


def test_issuer_changed():
    assert reasons(info(issuer={'commonName': INT_CN})) == ['issuer changed']
    assert reasons(info(issuer={})) == ['issuer changed']
    assert reasons(info(issuer={'commonName': INT_CN}), own_ca_signing_cn=INT_CN) == []
    assert reasons(info(), dict(CERT, issuer='acme')) == ['issuer changed']
    assert reasons(info(issuer={'commonName': INT_CN}), dict(CERT, issuer='acme')) == ['issuer changed']


def test_private_key_missing():
    assert reasons(info(), key_exists=False) == ['private key missing']


OUR_CA = '1B:51:75:CC:87:80:D8:14:12:67:83:09:78:1C:55:74:75:B1:23:3D'
OTHER_CA = '61:A7:0C:AA:B9:0D:E8:5A:99:50:8E:F0:5F:96:68:70:B5:90:0C:66'


def test_a_certificate_another_own_ca_signed_is_named_with_both_key_ids():
    assert reasons(info(authority_key_identifier=OUR_CA), own_ca_key_id=OUR_CA) == []
    # Same identifier, other spelling.
    assert reasons(info(authority_key_identifier=OUR_CA.lower().replace(':', '')), own_ca_key_id=OUR_CA) == []
    assert reasons(info(authority_key_identifier=OTHER_CA), own_ca_key_id=OUR_CA) == [
        'signed by another own CA (authority key id %s; the own CA in tls_ca_dir is %s)' % (OTHER_CA, OUR_CA)]


@pytest.mark.parametrize('current, cert, key_id', [
    (info(authority_key_identifier=OTHER_CA), CERT, ''),        # the own CA's key id unknown (check mode, no CA yet)
    (info(), CERT, OUR_CA),                                      # a certificate without the extension
    (info(authority_key_identifier=OTHER_CA, issuer={'commonName': 'R3'}), dict(CERT, issuer='acme'), OUR_CA),
])
def test_the_signer_is_compared_only_for_own_ca_certificates_with_both_ids(current, cert, key_id):
    assert reasons(current, cert, own_ca_key_id=key_id) == []


def test_an_issuer_with_another_name_is_issuer_changed_only():
    assert reasons(info(issuer={'commonName': INT_CN}, authority_key_identifier=OTHER_CA), own_ca_key_id=OUR_CA) == [
        'issuer changed']


def test_every_reason_in_order():
    current = info(valid_at={'renew': False}, subject_alt_name=[], public_key_type='RSA', issuer={'commonName': 'x'})
    assert reasons(current, force=True, key_exists=False) == [
        'forced', 'expires within 30 days (20270101000000Z)', 'SANs changed', 'key type or size changed',
        'issuer changed', 'private key missing']


def result(name, not_after, serial=4660, issuer=ROOT_CN):
    return {'item': name, 'not_after': not_after, 'serial_number': serial, 'issuer': {'commonName': issuer}}


NAMES = ['web', 'db', 'edge']
NOW = '20261201120000Z'


def test_report():
    report = tls_report([result('web', '20270301120000Z', 0xabcdef), result('db', '20261215083017Z', 17),
                         {'item': 'edge', 'failed': True, 'msg': 'no file'}], NAMES, ['db'], now=NOW)
    db = {'name': 'db', 'serial': '11', 'issuer': ROOT_CN, 'not_after': '20261215083017Z', 'days_left': 13.85}
    assert report == {
        'rotated': ['db'], 'unchanged': ['web', 'edge'],
        'certificates': [{'name': 'web', 'serial': 'abcdef', 'issuer': ROOT_CN, 'not_after': '20270301120000Z',
                          'days_left': 90.0}, db],
        'next_expiry': db}


def test_report_expired_and_equal_expiries():
    report = tls_report([result('web', '20261203000000Z'), result('db', '20261201000000Z', issuer=None),
                         result('edge', '20261201000000Z')], NAMES, NAMES, now=NOW)
    assert [c['days_left'] for c in report['certificates']] == [1.5, -0.5, -0.5]
    assert report['certificates'][1]['issuer'] is None
    # The first of equals, as the Jinja's stable sort then first.
    assert report['next_expiry']['name'] == 'db'
    assert report['unchanged'] == []


def test_report_nothing_read():
    skipped = [{'item': name, 'skipped': True} for name in NAMES]
    assert tls_report(skipped, NAMES, [], now=NOW) == {
        'rotated': [], 'unchanged': NAMES, 'certificates': [], 'next_expiry': None}
    assert tls_report([], [], [], now=NOW) == {'rotated': [], 'unchanged': [], 'certificates': [], 'next_expiry': None}


def test_report_issuer_without_common_name():
    report = tls_report([{'item': 'web', 'not_after': '20261202120000Z', 'serial_number': 1, 'issuer': {}}],
                        NAMES, [], now=NOW)
    assert report['certificates'][0]['issuer'] == ''
    assert report['certificates'][0]['days_left'] == 1.0


def test_report_default_now_and_bad_time():
    assert tls_report([result('web', '29991231235959Z')], NAMES, [])['certificates'][0]['days_left'] > 0
    with pytest.raises(AnsibleFilterError, match='is not a time'):
        tls_report([], NAMES, [], now='2026-12-01')


def host_report(rotated, unchanged, *expiries):
    """A host's tls_report: its certificates named after their days left."""
    return {'tls_report': {
        'rotated': rotated, 'unchanged': unchanged,
        'certificates': [{'name': name, 'serial': '1f', 'issuer': ROOT_CN, 'not_after': '20270101000000Z',
                          'days_left': days} for name, days in expiries],
        'next_expiry': None}}


def test_summary_of_several_hosts():
    hostvars = {
        'edge1': host_report(['edge'], ['api'], ('edge', 89.5), ('api', 12.25)),
        'app1': {'inventory_hostname': 'app1'},
        'data1': host_report([], ['postgresql', 'redis'], ('postgresql', 40.0), ('redis', 3.0)),
    }
    assert tls_summary(['edge1', 'app1', 'data1'], hostvars) == {
        'rotated': ['edge1: edge'],
        'unchanged': ['edge1: api', 'data1: postgresql', 'data1: redis'],
        'next_expiry': {'name': 'redis', 'serial': '1f', 'issuer': ROOT_CN, 'not_after': '20270101000000Z',
                        'days_left': 3.0, 'host': 'data1'}}


def test_summary_in_the_order_of_the_hosts_given():
    hostvars = {'a': host_report(['x'], []), 'b': host_report(['y'], [])}
    assert tls_summary(['b', 'a'], hostvars)['rotated'] == ['b: y', 'a: x']
    # Hosts outside the list are not read.
    assert tls_summary(['a'], hostvars)['rotated'] == ['a: x']


def test_summary_first_of_equal_expiries():
    hostvars = {'a': host_report([], ['x'], ('x', -0.5)), 'b': host_report([], ['y'], ('y', -0.5))}
    assert tls_summary(['a', 'b'], hostvars)['next_expiry']['host'] == 'a'
    assert tls_summary(['b', 'a'], hostvars)['next_expiry']['host'] == 'b'


def test_summary_host_field_of_the_report_is_replaced():
    hostvars = {'a': host_report([], [], ('x', 1.0))}
    hostvars['a']['tls_report']['certificates'][0]['host'] = 'elsewhere'
    assert tls_summary(['a'], hostvars)['next_expiry']['host'] == 'a'


@pytest.mark.parametrize('hosts, hostvars', [
    ([], {}),
    (None, {}),
    (['app1'], {'app1': {}}),
    # A report of a host that read no certificate (check mode on a fresh host, every file missing).
    (['a'], {'a': host_report([], [])}),
])
def test_summary_of_nothing(hosts, hostvars):
    assert tls_summary(hosts, hostvars) == {'rotated': [], 'unchanged': [], 'next_expiry': None}


def test_summary_report_not_a_dictionary():
    with pytest.raises(AnsibleFilterError, match='the tls_report of a is not a dictionary'):
        tls_summary(['a'], {'a': {'tls_report': 'rotated'}})


# --- tls_reader_errors (the readers entry point) ---------------------------

REDIS = {'user': 'redis', 'certificate': 'redis', 'variable': 'redis_tls_certificate',
         'files': ['/etc/aiquiz/tls/redis/fullchain.pem', '/etc/aiquiz/tls/redis/privkey.pem']}
SNAKEOIL = {'user': 'postgres', 'certificate': '', 'variable': 'postgresql_tls_cert_file or postgresql_tls_key_file',
            'files': ['/etc/ssl/certs/ssl-cert-snakeoil.pem', '/etc/ssl/private/absent.key'],
            'hint': 'Or give the key owner postgres and mode 0600.'}


def test_readers_that_read_everything_or_were_skipped_give_no_message():
    results = [{'rc': 0, 'stdout': '', '__tls_reader': REDIS}, {'skipped': True, '__tls_reader': SNAKEOIL}]
    assert tls_reader_errors(results, 'data1') == []


def test_an_unreadable_file_names_host_variable_files_user_and_the_fix():
    results = [{'rc': 1, 'stdout': '/etc/aiquiz/tls/redis/privkey.pem\n', '__tls_reader': REDIS},
               {'rc': 0, 'stdout': '', '__tls_reader': SNAKEOIL}]
    assert tls_reader_errors(results, 'data1') == [
        'data1: redis_tls_certificate (/etc/aiquiz/tls/redis/privkey.pem) are missing or not readable by redis: '
        'nothing else was changed. Declare the certificate redis (redis_tls_certificate) in tls_certificates with '
        'a group redis is in and mode 0640.']


def test_files_given_by_path_name_the_path_variables_and_the_hint():
    results = [{'rc': 1, 'stdout': '/etc/ssl/private/absent.key', '__tls_reader': SNAKEOIL}]
    assert tls_reader_errors(results, 'db1') == [
        'db1: postgresql_tls_cert_file or postgresql_tls_key_file (/etc/ssl/private/absent.key) are missing or not '
        'readable by postgres: nothing else was changed. Give them a group postgres is in and mode 0640, or fix '
        'postgresql_tls_cert_file or postgresql_tls_key_file. Or give the key owner postgres and mode 0600.']


def test_a_check_that_could_not_run_says_why_and_lists_every_file():
    results = [{'rc': 127, 'stdout': '', 'stderr': 'runuser: user redis does not exist', '__tls_reader': REDIS}]
    (message,) = tls_reader_errors(results, 'data1')
    assert ('(/etc/aiquiz/tls/redis/fullchain.pem, /etc/aiquiz/tls/redis/privkey.pem) could not be checked as '
            'redis (rc 127: runuser: user redis does not exist)') in message


def test_a_certificate_a_check_mode_run_would_issue_is_let_through():
    results = [{'rc': 1, 'stdout': '/etc/aiquiz/tls/redis/privkey.pem', '__tls_reader': REDIS},
               {'rc': 1, 'stdout': '/etc/ssl/private/absent.key', '__tls_reader': SNAKEOIL}]
    (message,) = tls_reader_errors(results, 'data1', ['redis'])
    assert message.startswith('data1: postgresql_tls_cert_file or postgresql_tls_key_file')


def test_reader_errors_refuse_what_is_not_a_result_list():
    with pytest.raises(AnsibleFilterError, match='tls_reader_errors: expected the results'):
        tls_reader_errors({'results': []}, 'data1')
    assert FilterModule().filters()['tls_reader_errors'] is tls_reader_errors
