"""Filter backup_targets: the CA of an S3 target given as PEM text in the inventory."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.backup_targets import backup_targets

PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\nZm9v\n-----END CERTIFICATE-----\n"
S3 = {"name": "s3", "type": "s3", "bucket": "b", "endpoint": "objects1"}
LOCAL = {"name": "local", "type": "local", "path": "/var/backups/aiquiz"}


def test_a_target_with_ca_cert_reads_the_written_file():
    out = backup_targets([LOCAL, dict(S3, ca_cert=PEM)], "/etc/ssl/aiquiz-backup/")
    assert out[0] == LOCAL
    assert out[1]["ca_file"] == "/etc/ssl/aiquiz-backup/s3-ca.pem"
    assert out[1]["ca_cert"] == PEM


def test_targets_without_ca_cert_are_unchanged():
    given = [LOCAL, dict(S3, ca_file="/etc/ssl/certs/x.pem"), dict(S3, name="aws", ca_cert="")]
    assert backup_targets(given, "/d") == given


def test_the_input_is_not_modified():
    target = dict(S3, ca_cert=PEM)
    backup_targets([target], "/d")
    assert "ca_file" not in target


@pytest.mark.parametrize("target, message", [
    (dict(S3, ca_cert=PEM, ca_file="/x.pem"), "backup target s3: set ca_cert .* or ca_file .*not both"),
    (dict(LOCAL, ca_cert=PEM), "backup target local: ca_cert is for s3 targets only"),
    (dict(S3, ca_cert="not a certificate"), "backup target s3: ca_cert is not a PEM certificate"),
    (dict(S3, ca_cert="-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----"), "not a PEM certificate"),
])
def test_bad_ca_cert_is_refused_naming_the_target(target, message):
    with pytest.raises(AnsibleFilterError, match=message):
        backup_targets([target], "/d")


@pytest.mark.parametrize("given", ["s3", [["s3"]], None])
def test_targets_that_are_not_a_list_of_dicts_are_refused(given):
    with pytest.raises(AnsibleFilterError, match="backup_targets: "):
        backup_targets(given, "/d")
