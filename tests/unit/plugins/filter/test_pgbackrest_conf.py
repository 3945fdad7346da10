"""Filter pgbackrest_conf: the one pgBackRest configuration the backup and restore roles write."""

import configparser

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.aiquiz.ops.plugins.filter.backup_targets import pgbackrest_conf

LOCAL = {"name": "local", "type": "local", "path": "/var/backups/aiquiz"}
S3 = {"name": "s3", "type": "s3", "bucket": "aiquiz-backups", "endpoint": "objects1", "port": 9443,
      "region": "eu-west-1", "uri_style": "path", "ca_file": "/etc/ssl/aiquiz-backup/s3-ca.pem",
      "access_key": "AKIA", "secret_key": "s3cret", "prefix": "/prod"}
AWS = {"name": "aws", "type": "s3", "bucket": "b2", "access_key": "k", "secret_key": "s", "verify_tls": False}


def parse(text):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_one_encrypted_repository_per_target_in_order():
    text = pgbackrest_conf([LOCAL, S3, AWS], "main", "pass phrase", "15", pg_port=5433, retention_full=3)
    conf = parse(text)
    glob = conf["global"]
    assert glob["repo1-path"] == "/var/backups/aiquiz/pgbackrest"
    assert glob["repo2-type"] == "s3" and glob["repo2-path"] == "/prod/pgbackrest"
    assert (glob["repo2-s3-bucket"], glob["repo2-s3-endpoint"], glob["repo2-s3-region"]) == (
        "aiquiz-backups", "objects1", "eu-west-1")
    assert (glob["repo2-storage-port"], glob["repo2-storage-ca-file"]) == ("9443", "/etc/ssl/aiquiz-backup/s3-ca.pem")
    assert "repo2-storage-verify-tls" not in glob
    # Defaults of an AWS target: the regional endpoint, port 443, and TLS checks off only when asked.
    assert (glob["repo3-s3-endpoint"], glob["repo3-s3-region"], glob["repo3-storage-port"]) == (
        "s3.us-east-1.amazonaws.com", "us-east-1", "443")
    assert glob["repo3-storage-verify-tls"] == "n" and "repo3-storage-ca-file" not in glob
    for n in (1, 2, 3):
        assert glob["repo%d-cipher-type" % n] == "aes-256-cbc"
        assert glob["repo%d-cipher-pass" % n] == "pass phrase"
        assert glob["repo%d-retention-full" % n] == "3"
    assert conf["main"]["pg1-path"] == "/var/lib/postgresql/15/main" and conf["main"]["pg1-port"] == "5433"
    assert text.endswith("pg1-port=5433\n")


def test_a_later_generation_lives_beside_the_first():
    glob = parse(pgbackrest_conf([LOCAL, S3], "main", "p", "17", generation=3))["global"]
    assert glob["repo1-path"] == "/var/backups/aiquiz/pgbackrest-g3"
    assert glob["repo2-path"] == "/prod/pgbackrest-g3"


def test_the_same_input_gives_the_same_text():
    # The backup role on the data host and the restore role on a fresh host must write one file.
    assert pgbackrest_conf([LOCAL, S3], "main", "p", "15") == pgbackrest_conf([dict(LOCAL), dict(S3)], "main", "p", "15")


@pytest.mark.parametrize("targets, args, words", [
    ([dict(S3, secret_key="x\nrepo2-path=/elsewhere")], {}, ["secret_key", "s3", "line break"]),
    ([dict(LOCAL, path="/a\n[other]")], {}, ["path", "local", "line break"]),
    ([LOCAL], {"cipher_pass": "a\nb"}, ["cipher passphrase", "line break"]),
    ([dict(LOCAL, type="ftp")], {}, ["local", "ftp"]),
    ([LOCAL], {"stanza": "main]\n[x"}, ["stanza", "plain name"]),
    ([LOCAL], {"cipher_pass": ""}, ["passphrase is empty"]),
    ([], {}, ["non-empty list"]),
    ([LOCAL], {"generation": 0}, ["generation"]),
])
def test_bad_input_is_refused_naming_it(targets, args, words):
    call = dict({"stanza": "main", "cipher_pass": "p", "pg_version": "15"}, **args)
    with pytest.raises(AnsibleFilterError) as err:
        pgbackrest_conf(targets, **call)
    assert all(word in str(err.value) for word in words)
