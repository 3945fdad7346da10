"""Behaviour of the redis role on Debian 12 (Redis 7.0) and Debian 13."""

import os
import pathlib
import time

import pytest
import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
CONVERGE = ROOT / "molecule" / "redis" / "converge.yml"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ("redis-debian12", "redis-debian13")
PASSWORD = "molecule-redis-password"


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def cli(host, *args, password=PASSWORD):
    """redis-cli on the host (password through REDISCLI_AUTH, never on the command line)."""
    env = "REDISCLI_AUTH=%s " % password if password is not None else ""
    return host.run(env + "redis-cli -h 127.0.0.1 -p 6379" + " %s" * len(args), *args)


def aof_size(host):
    return int(host.check_output("stat -c %s /var/lib/redis/appendonlydir/appendonly.aof.*.incr.aof | tail -1"))


@pytest.mark.parametrize("name", HOSTS)
def test_service_runs_on_loopback_only(name):
    host = get(name)
    service = host.service("redis-server")
    assert service.is_running and service.is_enabled
    assert host.socket("tcp://127.0.0.1:6379").is_listening
    assert not host.socket("tcp://0.0.0.0:6379").is_listening
    address = host.check_output("hostname -I").split()[0]
    assert host.run("python3 -c %s %s", "import socket,sys; socket.create_connection((sys.argv[1], 6379), 2)",
                    address).rc != 0
    # The lab/Molecule drop-in is there because the variable says so.
    assert host.check_output("systemctl show -p PrivateUsers redis-server") == "PrivateUsers=no"


@pytest.mark.parametrize("name", HOSTS)
def test_config_files_are_root_redis_0640(name):
    host = get(name)
    for path in ("/etc/redis/redis.conf", "/etc/redis/redis-auth.conf"):
        conf = host.file(path)
        assert (conf.user, conf.group, conf.mode) == ("root", "redis", 0o640), path
    assert PASSWORD not in host.file("/etc/redis/redis.conf").content_string
    # Other users cannot read the password.
    assert host.run("runuser -u nobody -- cat /etc/redis/redis-auth.conf").rc != 0


@pytest.mark.parametrize("name", HOSTS)
def test_password_is_required(name):
    host = get(name)
    out = cli(host, "ping", password=None)
    assert "NOAUTH" in out.stdout + out.stderr, out.stdout
    out = cli(host, "ping", password="not-the-password-at-all")
    assert "WRONGPASS" in out.stdout + out.stderr or "invalid username-password" in out.stdout + out.stderr, out.stdout
    assert cli(host, "ping").stdout.strip() == "PONG"


@pytest.mark.parametrize("name", HOSTS)
def test_memory_limit_and_policy(name):
    host = get(name)
    assert cli(host, "config", "get", "maxmemory").stdout.split() == ["maxmemory", str(64 * 1024 * 1024)]
    assert cli(host, "config", "get", "maxmemory-policy").stdout.split() == ["maxmemory-policy", "allkeys-lru"]


@pytest.mark.parametrize("name", HOSTS)
def test_aof_grows_and_data_survives_a_restart(name):
    host = get(name)
    assert cli(host, "config", "get", "appendonly").stdout.split() == ["appendonly", "yes"]
    before = aof_size(host)
    marker = "mark-%d" % time.time_ns()
    for i in range(20):
        assert cli(host, "set", "%s-%d" % (marker, i), "x" * 100).stdout.strip() == "OK"
    time.sleep(1.5)  # appendfsync everysec
    assert aof_size(host) > before + 20 * 100
    host.check_output("systemctl restart redis-server")
    for _attempt in range(50):
        if cli(host, "ping").stdout.strip() == "PONG":
            break
        time.sleep(0.2)
    assert cli(host, "get", marker + "-19").stdout.strip() == "x" * 100


def test_bad_input_fails_before_any_change():
    host = get("redis-debian12")
    before = host.file("/etc/redis/redis.conf").sha256sum
    rc, out = ansible_playbook(CONVERGE, {"redis_password": "short", "redis_maxmemory": "lots"},
                               limit="redis-debian12")
    assert rc != 0, out
    assert "redis_password: shorter than 16 characters" in out, out
    assert 'redis_maxmemory: "lots" is not a size' in out, out
    assert "short" not in out.replace("shorter", "")
    assert "Install redis-server" not in out
    assert host.file("/etc/redis/redis.conf").sha256sum == before
    rc, out = ansible_playbook(CONVERGE, {"redis_maxmemory_policy": "lru"}, limit="redis-debian12")
    assert rc != 0 and "redis_maxmemory_policy" in out, out
