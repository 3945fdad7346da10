#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, aiquiz.ops maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_inventory
short_description: List the certificates of a host's files and TLS endpoints, with their expiry, key match and chain
version_added: 0.1.0
description:
  - Reads the X.509 certificates in O(paths) (files; shell globs allowed) and the certificates that the TLS servers in
    O(endpoints) send, and returns for each one its subject, SANs, issuer, serial, validity dates and days left.
  - A file's first certificate is the one described; the certificates after it (a C(fullchain.pem)) are its chain.
    An endpoint's chain is what the server sends in the handshake.
  - With O(keys), checks that the private key of a certificate belongs to it. The key is read only to derive its
    public half; nothing of it is returned or logged.
  - With O(ca_file), checks each chain up to a CA of that file by hand, so that it works with cryptography 38
    (Debian 12). Every certificate must be within its dates and signed by the next one (RSA PKCS#1 v1.5 and PSS,
    ECDSA, Ed25519, Ed448, DSA), intermediates must be CA certificates.
  - RV(expiring) lists the sources with less than O(min_days) days left (expired ones too); with
    O(fail_on_expiring) the module fails naming them.
  - A file that cannot be read, a certificate that cannot be parsed or an endpoint that does not answer is an item
    with its RV(certificates[].error) set; the module itself does not fail for it.
  - With O(textfile), writes the inventory as Prometheus metrics for the node exporter's textfile collector.
requirements:
  - cryptography >= 38 on the target host (Debian's C(python3-cryptography)).
author:
  - aiquiz.ops maintainers (!UNKNOWN)
extends_documentation_fragment:
  - aiquiz.ops.attributes
attributes:
  check_mode:
    support: full
    details: Scans as in a real run (it only reads) and reports whether O(textfile) would change, without writing it.
  diff_mode:
    support: full
    details: Returns the O(textfile) content before and after.
  platform:
    support: full
    platforms: posix
options:
  paths:
    description:
      - Certificate files, PEM (one or more certificates) or DER. Shell globs (C(*), C(?), C([...])) are expanded,
        sorted; a glob that matches nothing gives no item, a warning and an entry in RV(unmatched), a missing literal path gives an item with
        an error.
    type: list
    elements: path
    default: []
  keys:
    description:
      - Certificate path (as it appears in RV(certificates[].source)) to the path of its private key (PEM or DER,
        unencrypted). RV(certificates[].key_match) is set for these; an unreadable or encrypted key sets
        RV(certificates[].error) and leaves RV(certificates[].key_match) null.
    type: dict
    default: {}
  endpoints:
    description:
      - TLS endpoints to connect to from the target host. The certificates are fetched without verification, so
        that an expired or untrusted certificate is reported rather than refused.
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: Name or address to connect to.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        default: 443
      server_name:
        description:
          - Name sent in the TLS SNI extension. Defaults to O(endpoints[].host) when it is a name; no SNI is sent for
            an address without O(endpoints[].server_name).
        type: str
  ca_file:
    description:
      - PEM file of the trusted CA certificates. When given, RV(certificates[].chain_valid) tells whether each chain
        leads to one of them; when not, it is null.
    type: path
  min_days:
    description:
      - A certificate with fewer days left than this is in RV(expiring).
    type: int
    default: 14
  fail_on_expiring:
    description:
      - Fail, naming each certificate of RV(expiring) with its days left, when RV(expiring) is not empty. The result
        still carries every item.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for each endpoint's connection and handshake.
    type: float
    default: 10
  textfile:
    description:
      - Absolute path of a node exporter textfile (it must end with C(.prom)) to write the inventory to, for
        example C(/var/lib/prometheus/node-exporter/aiquiz_certificates.prom).
      - 'Metrics, each a gauge with the labels C(source), C(subject) and C(serial):
        C(aiquiz_certificate_expiry_seconds) (Unix time of notAfter), C(aiquiz_certificate_days_left) (whole days,
        floor), C(aiquiz_certificate_chain_valid) and C(aiquiz_certificate_key_match) (0 or 1, when checked), and
        C(aiquiz_certificate_scan_error) (label C(source) only; 1 when the item has an error).'
      - Written atomically (a temporary file beside it, renamed over it) with mode C(0644); missing parent directories
        are created with mode C(0755). Written only when its content or mode differs, never in check mode. The
        content changes when a certificate changes and once a day for RV(certificates[].days_left).
    type: path
notes:
  - Endpoints are reached directly, without any proxy from the environment. The module uses the Python ssl module
    of the target, so protocols and ciphers its OpenSSL refuses cannot be scanned.
  - Python 3.10 to 3.12 expose the peer's chain only through a private method of the ssl module, which the module
    uses; without it (another Python), only the server's own certificate is read.
seealso:
  - module: community.crypto.x509_certificate_info
  - module: community.crypto.get_certificate
"""

EXAMPLES = r"""
- name: Inventory the platform's certificates and the edge's HTTPS endpoint
  aiquiz.ops.certificate_inventory:
    paths:
      - /etc/aiquiz/tls/*/fullchain.pem
    keys:
      /etc/aiquiz/tls/edge/fullchain.pem: /etc/aiquiz/tls/edge/privkey.pem
    endpoints:
      - host: 127.0.0.1
        port: 443
        server_name: quiz.example.com
    ca_file: /etc/ssl/certs/aiquiz-ca.pem
    min_days: 21
  become: true
  register: quiz_certs

- name: Show what expires soon
  ansible.builtin.debug:
    msg: "{{ quiz_certs.expiring }}"

- name: Refuse to go on with a certificate that expires within 14 days
  aiquiz.ops.certificate_inventory:
    paths: [/etc/aiquiz/tls/edge/fullchain.pem]
    fail_on_expiring: true

- name: Publish the expiry of every certificate to the node exporter
  aiquiz.ops.certificate_inventory:
    paths:
      - /etc/aiquiz/tls/*/cert.pem
      - /etc/ssl/certs/ssl-cert-snakeoil.pem
    textfile: /var/lib/prometheus/node-exporter/aiquiz_certificates.prom
  become: true
"""

RETURN = r"""
certificates:
  description: One item per file (in the order of O(paths), globs sorted) and then per endpoint.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: The file's path, or C(host:port) of the endpoint, as C(server_name@host:port) when the SNI name
        differs from the host.
      type: str
      sample: /etc/aiquiz/tls/edge/fullchain.pem
    type:
      description: V(file) or V(endpoint).
      type: str
      sample: file
    subject:
      description: Subject distinguished name (RFC 4514), null when the certificate could not be read.
      type: str
      sample: CN=quiz.example.com
    sans:
      description: Subject alternative names as C(DNS:<name>), C(IP:<address>), C(email:<address>) or C(URI:<uri>).
      type: list
      elements: str
      sample: ["DNS:quiz.example.com", "IP:192.0.2.10"]
    issuer:
      description: Issuer distinguished name (RFC 4514).
      type: str
      sample: CN=aiquiz Root CA,O=aiquiz
    serial:
      description: Serial number in lowercase hexadecimal, no separators.
      type: str
      sample: 4c1f0a9e3b
    not_before:
      description: Start of validity, ISO 8601 UTC.
      type: str
      sample: "2026-11-01T00:00:00Z"
    not_after:
      description: End of validity, ISO 8601 UTC.
      type: str
      sample: "2027-01-30T00:00:00Z"
    days_left:
      description: Days from now to RV(certificates[].not_after), to 0.001 day; negative once expired.
      type: float
      sample: 63.504
    key_match:
      description: Whether the key given in O(keys) belongs to the certificate; null when not checked.
      type: bool
      sample: true
    chain_valid:
      description: Whether the chain leads to a CA of O(ca_file) (signatures and dates); null without O(ca_file).
      type: bool
      sample: true
    chain_error:
      description: Why RV(certificates[].chain_valid) is false, null otherwise.
      type: str
      sample: "no trusted issuer verifies CN=quiz.example.com (issuer CN=Other CA)"
    chain_length:
      description: Certificates in the file or sent by the endpoint, the certificate itself included.
      type: int
      sample: 2
    error:
      description:
        - Why the certificate or its key could not be read or the endpoint not scanned; null when all went well.
        - When the certificate itself could not be read, its other fields are null.
      type: str
      sample: "cannot read /etc/aiquiz/tls/edge/fullchain.pem: No such file or directory"
expiring:
  description: Sources of the certificates with fewer than O(min_days) days left, expired ones included.
  returned: always
  type: list
  elements: str
  sample: [/etc/aiquiz/tls/edge/fullchain.pem]
errors:
  description: Sources whose item has an error.
  returned: always
  type: list
  elements: str
  sample: ["quiz.example.com@127.0.0.1:443"]
unmatched:
  description: Globs of O(paths) that matched no file (each also gives a warning).
  returned: always
  type: list
  elements: str
  sample: [/etc/aiquiz/tls/*/fullchain.pem]
textfile:
  description: Path of the textfile written (or that would be written in check mode), null without O(textfile).
  returned: always
  type: str
  sample: /var/lib/prometheus/node-exporter/aiquiz_certificates.prom
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.aiquiz.ops.plugins.module_utils import _certs


def argument_spec():
    return dict(
        paths=dict(type='list', elements='path', default=[]),
        # Paths to keys, not key material.
        keys=dict(type='dict', default={}, no_log=False),
        endpoints=dict(type='list', elements='dict', default=[], options=dict(
            host=dict(type='str', required=True),
            port=dict(type='int', default=443),
            server_name=dict(type='str'),
        )),
        ca_file=dict(type='path'),
        min_days=dict(type='int', default=14),
        fail_on_expiring=dict(type='bool', default=False),
        timeout=dict(type='float', default=10),
        textfile=dict(type='path'),
    )


def update_textfile(module, path, items, now):
    """(changed, diff) of bringing the textfile to the items' content."""
    after = _certs.render_textfile(items, now)
    before = _certs.read_text(path)
    changed = before != after or _certs.file_mode(path) != _certs.FILE_MODE
    if changed and not module.check_mode:
        _certs.write_atomic(path, after)
    diff = dict(before=before or '', after=after, before_header=path, after_header=path)
    return changed, diff


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not _certs.HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography >= 38 (Debian: python3-cryptography)'))
    params = module.params
    errors = _certs.validate_params(params)
    if errors:
        module.fail_json(msg='Invalid arguments: %s' % '; '.join(errors))
    try:
        now = _certs.utc_now()
        items, unmatched = _certs.scan(params, now)
    except _certs.CertError as exc:
        module.fail_json(msg=str(exc))
    for pattern in unmatched:
        module.warn('no certificate file matches %s' % pattern)
    result = dict(
        changed=False,
        certificates=items,
        expiring=_certs.expiring(items, params['min_days']),
        errors=[item['source'] for item in items if item['error']],
        unmatched=unmatched,
        textfile=params['textfile'],
    )
    if params['textfile']:
        try:
            result['changed'], diff = update_textfile(module, params['textfile'], items, now)
        except (_certs.CertError, IOError, OSError) as exc:
            module.fail_json(msg='cannot write textfile %s: %s' % (params['textfile'], exc),
                             exception=traceback.format_exc(), **result)
        if module._diff:
            result['diff'] = diff
    if params['fail_on_expiring'] and result['expiring']:
        module.fail_json(msg=_certs.expiring_message(items, params['min_days']), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
