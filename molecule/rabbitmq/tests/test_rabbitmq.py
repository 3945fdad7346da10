"""Behaviour of the rabbitmq role on Debian 12 (RabbitMQ 3.10) and Debian 13.

The tests talk AMQP 0-9-1 with python3-pika (installed by the scenario's
prepare) on each host's loopback.
"""

import json
import os
import pathlib

import pytest
import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
CONVERGE = ROOT / "molecule" / "rabbitmq" / "converge.yml"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ("rabbitmq-debian12", "rabbitmq-debian13")

# Publish one message to a fresh queue, read it back; prints what happened.
ROUNDTRIP = """
import sys, uuid, pika
user, password, vhost, address = sys.argv[1:5]
try:
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        host=address, port=5672, virtual_host=vhost, credentials=pika.PlainCredentials(user, password),
        connection_attempts=1, socket_timeout=5, blocked_connection_timeout=5))
except pika.exceptions.ProbableAuthenticationError:
    print("auth-refused"); sys.exit(0)
except pika.exceptions.ProbableAccessDeniedError:
    print("access-refused"); sys.exit(0)
except pika.exceptions.AMQPConnectionError as exc:
    print("connect-error %r" % exc); sys.exit(0)
ch = conn.channel()
body = uuid.uuid4().hex.encode()
try:
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.basic_publish(exchange="", routing_key=q, body=body)
    for _ in range(50):
        method, _props, got = ch.basic_get(q, auto_ack=True)
        if method:
            break
        conn.sleep(0.1)
    print("roundtrip" if got == body else "lost")
except pika.exceptions.ChannelClosedByBroker as exc:
    print("channel-refused %s" % exc.reply_code)
conn.close()
"""


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def roundtrip(host, user, password, vhost="orders", address="127.0.0.1"):
    return host.check_output("python3 -c %s %s %s %s %s", ROUNDTRIP, user, password, vhost, address).strip()


@pytest.mark.parametrize("name", HOSTS)
def test_node_runs_under_a_stable_name(name):
    host = get(name)
    service = host.service("rabbitmq-server")
    assert service.is_running and service.is_enabled
    status = json.loads(host.check_output("rabbitmqctl status --formatter json"))
    assert status["data_directory"] == "/var/lib/rabbitmq/mnesia/rabbit@localhost"
    # The listeners of rabbitmq_bind, and nothing on other addresses.
    assert host.socket("tcp://127.0.0.1:5672").is_listening
    assert host.socket("tcp://127.0.0.2:5672").is_listening
    assert not host.socket("tcp://0.0.0.0:5672").is_listening
    for path in ("/etc/rabbitmq/rabbitmq-env.conf", "/etc/rabbitmq/rabbitmq.conf"):
        conf = host.file(path)
        assert (conf.user, conf.group, conf.mode) == ("root", "root", 0o644), path


@pytest.mark.parametrize("name", HOSTS)
def test_guest_is_gone(name):
    host = get(name)
    users = {u["user"] for u in json.loads(host.check_output("rabbitmqctl list_users --formatter json"))}
    assert users == {"app", "watcher"}
    assert roundtrip(host, "guest", "guest", vhost="/") == "auth-refused"


@pytest.mark.parametrize("name", HOSTS)
def test_declared_user_publishes_and_consumes(name):
    host = get(name)
    assert roundtrip(host, "app", "molecule-amqp-password") == "roundtrip"
    assert roundtrip(host, "app", "molecule-amqp-password", address="127.0.0.2") == "roundtrip"
    assert roundtrip(host, "app", "not-the-password") == "auth-refused"
    # No permission on the default vhost.
    assert roundtrip(host, "app", "molecule-amqp-password", vhost="/") == "access-refused"


@pytest.mark.parametrize("name", HOSTS)
def test_permissions_and_tags_are_the_declared_ones(name):
    host = get(name)
    perms = json.loads(host.check_output("rabbitmqctl list_permissions -p orders --formatter json"))
    assert sorted((p["user"], p["configure"], p["write"], p["read"]) for p in perms) == [
        ("app", ".*", ".*", ".*"), ("watcher", "^$", "^$", ".*")]
    users = {u["user"]: u["tags"] for u in json.loads(host.check_output("rabbitmqctl list_users --formatter json"))}
    assert users["watcher"] == ["monitoring"]
    # Read-only: declaring a queue (configure) is refused.
    assert roundtrip(host, "watcher", "molecule-watcher-password") == "channel-refused 403"


def test_changed_definitions_converge_and_bad_input_stops_early():
    host = get("rabbitmq-debian12")
    users = [{"name": "app", "password": "rotated-amqp-password", "vhost": "orders"},
             {"name": "watcher", "state": "absent"}]
    try:
        rc, out = ansible_playbook(CONVERGE, {"rabbitmq_users": users}, limit="rabbitmq-debian12")
        assert rc == 0, out
        assert "rotated-amqp-password" not in out
        assert roundtrip(host, "app", "rotated-amqp-password") == "roundtrip"
        assert roundtrip(host, "app", "molecule-amqp-password") == "auth-refused"
        assert roundtrip(host, "watcher", "molecule-watcher-password") == "auth-refused"
    finally:
        rc, out = ansible_playbook(CONVERGE, limit="rabbitmq-debian12")
    assert rc == 0, out
    assert roundtrip(host, "app", "molecule-amqp-password") == "roundtrip"
    rc, out = ansible_playbook(CONVERGE, {"rabbitmq_users": [{"name": "app", "password": "x", "vhost": "nowhere"}]},
                               limit="rabbitmq-debian12")
    assert rc != 0 and 'rabbitmq_users[0] (app): vhost "nowhere" is not in rabbitmq_vhosts' in out, out
    assert "Install rabbitmq-server" not in out


@pytest.mark.parametrize("name", HOSTS)
def test_definitions_restore_brings_back_a_deleted_vhost_and_user(name):
    host = get(name)
    rc, out = ansible_playbook(ROOT / "playbooks" / "backup.yml", {"backup_hosts": name, "backup_steps": ["rabbitmq"]})
    assert rc == 0, out
    entry = json.loads(host.check_output("cat /var/lib/aiquiz/backup/catalogue.json"))["backups"][-1]
    assert (entry["kind"], entry["status"]) == ("rabbitmq", "good")
    assert host.check_output("head -c 8 %s" % entry["location"]) == "Salted__"
    # The password hashes in the definitions never sit readable by others.
    assert host.file(entry["location"]).mode == 0o600
    host.check_output("rabbitmqctl -q delete_user watcher && rabbitmqctl -q delete_vhost orders")
    assert roundtrip(host, "app", "molecule-amqp-password") != "roundtrip"
    rc, out = ansible_playbook(ROOT / "playbooks" / "restore.yml", {"restore_host": name, "restore_kind": "rabbitmq"})
    assert rc == 0, out
    assert roundtrip(host, "app", "molecule-amqp-password") == "roundtrip"
    users = {u["user"]: u["tags"] for u in json.loads(host.check_output("rabbitmqctl list_users --formatter json"))}
    assert users["watcher"] == ["monitoring"]
    assert roundtrip(host, "watcher", "molecule-watcher-password") == "channel-refused 403"
    # What the restore replaced was exported first, private.
    aside = host.check_output("ls /var/lib/aiquiz/backup/staging/before-restore/rabbitmq-definitions-*.json | tail -1")
    assert host.file(aside).mode == 0o600 and "orders" not in host.file(aside).content_string
