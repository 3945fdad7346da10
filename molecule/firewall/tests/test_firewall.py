"""Behaviour of the firewall role on three hosts of different groups.

firewall-data (group data, Debian 12), firewall-app (app, Debian 13) and
firewall-edge (edge, Debian 12) share a network of their own. Connections
are made for real between them: an accepted connection to a port with no
listener is refused at once (RST), a dropped one times out.
"""

import json
import os
import pathlib

import pytest
import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
CONVERGE = ROOT / "molecule" / "firewall" / "converge.yml"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
HOSTS = ("firewall-data", "firewall-app", "firewall-edge")

CONNECT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(2)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("timeout")
"""

# ICMP echo with a raw socket: the images have no ping binary.
PING = """
import os, socket, struct, sys
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(2)
ident = os.getpid() & 0xffff
head = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
payload = b"aiquiz-fw-test!!"
s.sendto(struct.pack("!BBHHH", 8, 0, csum(head + payload), ident, 1) + payload, (sys.argv[1], 0))
try:
    while True:
        data, _ = s.recvfrom(1024)
        icmp = data[(data[0] & 0x0f) * 4:]
        if icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == ident:
            print("reply")
            break
except OSError:
    print("timeout")
"""


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def address(name):
    out = get(name).check_output("ip -j -4 addr show dev eth0")
    return json.loads(out)[0]["addr_info"][0]["local"]


def connect(source, target, port):
    return get(source).check_output("python3 -c %s %s %s", CONNECT, target, str(port)).strip()


def ruleset(name):
    # Stateless (no counters); the SSH meters are emptied by the caller.
    return get(name).check_output("nft -s list ruleset")


def run_role(extra_vars=None, limit="firewall-data"):
    # The whole inventory directory: the empty monitoring group is in its own file.
    return ansible_playbook(CONVERGE, extra_vars, limit=limit)


@pytest.fixture()
def postgres_listener():
    """A TCP listener on firewall-data:5432 (any address) while the test runs."""
    data = get("firewall-data")
    data.run("systemctl stop fw-listen")
    started = data.run("systemd-run --unit fw-listen python3 -m http.server 5432 --bind 0.0.0.0")
    assert started.rc == 0, started.stderr
    for _attempt in range(50):
        if data.socket("tcp://0.0.0.0:5432").is_listening:
            break
        data.run("sleep 0.1")
    else:
        pytest.fail("the test listener on 5432 did not start")
    yield
    data.run("systemctl stop fw-listen")


def test_input_policy_is_drop_and_service_enabled_on_every_host():
    for name in HOSTS:
        host = get(name)
        table = host.check_output("nft list chain inet aiquiz_filter input")
        assert "hook input priority filter; policy drop;" in table, (name, table)
        assert host.service("nftables").is_enabled, name
        conf = host.file("/etc/nftables.conf").content_string.splitlines()
        assert not [line for line in conf if line.strip().startswith("flush")], (name, conf)
        assert 'include "/etc/nftables.d/*.nft"' in conf, (name, conf)


def test_postgres_reachable_from_app_only(postgres_listener):
    data_ip = address("firewall-data")
    assert connect("firewall-app", data_ip, 5432) == "open"
    assert connect("firewall-edge", data_ip, 5432) == "timeout"
    # Loopback is always allowed.
    assert connect("firewall-data", "127.0.0.1", 5432) == "open"


def test_group_defaults_apply_per_group():
    # Edge serves 80/443 to anyone; app's upstream ports only to edge.
    edge_ip, app_ip = address("firewall-edge"), address("firewall-app")
    assert connect("firewall-data", edge_ip, 443) == "refused"
    assert connect("firewall-edge", app_ip, 8000) == "refused"
    assert connect("firewall-data", app_ip, 8000) == "timeout"
    assert connect("firewall-app", address("firewall-data"), 6379) == "refused"


def test_ssh_port_allowed_from_admin_networks():
    # No sshd in the test hosts: an accepted SYN is answered by a reset.
    assert connect("firewall-app", address("firewall-data"), 22) == "refused"
    assert connect("firewall-app", address("firewall-data"), 2222) == "timeout"


def test_ping_answered():
    assert get("firewall-app").check_output("python3 -c %s %s", PING, address("firewall-data")).strip() == "reply"


def test_ssh_new_connections_rate_limited_per_source():
    chain = get("firewall-data").check_output("nft list chain inet aiquiz_filter input")
    assert "add @ssh_meter_ipv4 { ip saddr limit rate over 10/minute" in chain
    data_ip = address("firewall-data")
    results = []
    for _attempt in range(20):
        results.append(connect("firewall-edge", data_ip, 22))
        if results[-1] == "timeout":
            break
    # The burst passes, then new connections from this source are dropped,
    # while another source still gets through.
    assert results[0] == "refused", results
    assert "timeout" in results, results
    assert connect("firewall-app", data_ip, 22) == "refused"


def test_invalid_rule_fails_before_any_change():
    for meter in ("ssh_meter_ipv4", "ssh_meter_ipv6"):
        get("firewall-data").check_output("nft flush set inet aiquiz_filter %s", meter)
    before = ruleset("firewall-data")
    conf_before = get("firewall-data").file("/etc/nftables.d/aiquiz.nft").md5sum
    rc, out = run_role({"firewall_rules": [
        {"name": "bad_cidr", "port": 5432, "proto": "tcp", "sources": ["10.0.0.300/8"]},
        {"name": "bad_group", "port": 5433, "proto": "tcp", "sources": ["no_such_group"]},
        {"name": "bad_port", "port": "90-80", "proto": "tcp", "sources": ["app"]},
    ]})
    assert rc != 0, out
    assert 'firewall_rules[0] (bad_cidr): source "10.0.0.300/8"' in out, out
    assert 'firewall_rules[1] (bad_group): source "no_such_group"' in out, out
    assert 'firewall_rules[2] (bad_port): port "90-80"' in out, out
    assert "Install the nftables packages" not in out
    assert ruleset("firewall-data") == before
    assert get("firewall-data").file("/etc/nftables.d/aiquiz.nft").md5sum == conf_before


def test_reload_keeps_other_tables():
    data = get("firewall-data")
    data.check_output("nft add table ip docker_sim")
    data.check_output("nft add chain ip docker_sim c")
    try:
        rc, out = run_role({"firewall_rules": [
            {"name": "extra_https", "port": 8443, "proto": "tcp", "sources": ["192.0.2.0/24"]}]})
        assert rc == 0, out
        assert "RUNNING HANDLER [aiquiz.ops.firewall : Reload nftables]" in out, out
        assert 'tcp dport 8443 ip saddr 192.0.2.0/24 accept comment "extra_https"' in ruleset("firewall-data")
        assert data.run("nft list chain ip docker_sim c").rc == 0
        # Stopping or restarting the service removes only our table.
        data.check_output("systemctl restart nftables")
        assert data.run("nft list chain ip docker_sim c").rc == 0
        data.check_output("systemctl stop nftables")
        assert data.run("nft list table inet aiquiz_filter").rc != 0
        assert data.run("nft list chain ip docker_sim c").rc == 0
    finally:
        data.run("systemctl start nftables")
        rc, out = run_role()
        data.run("nft delete table ip docker_sim")
    assert rc == 0, out
    assert "extra_https" not in ruleset("firewall-data")


def test_drift_is_put_back_and_applied():
    """A re-run skips what the role's probe shows already as declared, so it
    must still see a rules file edited by hand, write it back (checked by
    nft -c), reload it, and enable the service again."""
    data = get("firewall-data")
    data.check_output("echo '# edited by hand' >> /etc/nftables.d/aiquiz.nft && systemctl disable --quiet nftables"
                      " && nft delete table inet aiquiz_filter")
    try:
        rc, out = run_role()
        assert rc == 0, out
        assert "edited by hand" not in data.file("/etc/nftables.d/aiquiz.nft").content_string
        assert data.run("nft list table inet aiquiz_filter").rc == 0
        assert data.service("nftables").is_enabled
        rc, out = run_role()
        assert rc == 0 and "changed=0" in out, out
    finally:
        data.run("systemctl enable --now nftables")


# What Docker does for a published port, without Docker: a listener in a
# network namespace behind a veth pair, and a DNAT in a table of its own.
# The connection is forwarded, never seen by the input chain.
PUBLISH = """
set -e
ip netns add fwpub
ip link add fwpub0 type veth peer name fwpub1
ip link set fwpub1 netns fwpub
ip addr add 10.99.0.1/30 dev fwpub0
ip link set fwpub0 up
ip netns exec fwpub ip addr add 10.99.0.2/30 dev fwpub1
ip netns exec fwpub ip link set fwpub1 up
ip netns exec fwpub ip link set lo up
ip netns exec fwpub ip route add default via 10.99.0.1
systemd-run --unit fw-pub ip netns exec fwpub python3 -m http.server 8080 --bind 10.99.0.2
nft -f - <<'NFT'
table ip fw_published {
    chain prerouting {
        type nat hook prerouting priority dstnat;
        tcp dport { 8055, 9055 } dnat to 10.99.0.2:8080
    }
}
NFT
"""
UNPUBLISH = "systemctl stop fw-pub; nft delete table ip fw_published; ip netns del fwpub; ip link del fwpub0"


@pytest.fixture()
def published_port():
    """firewall-app publishes 8055 (an app upstream port, for the edge only)
    and 9055 (in no rule) the way Docker does."""
    app = get("firewall-app")
    app.run(UNPUBLISH)
    app.check_output("bash -c %s", PUBLISH)
    for _attempt in range(50):
        if app.run("ip netns exec fwpub python3 -c %s 10.99.0.2 8080", CONNECT).stdout.strip() == "open":
            break
        app.run("sleep 0.1")
    yield address("firewall-app")
    app.run(UNPUBLISH)


def test_published_port_answers_allowed_sources_only(published_port):
    assert connect("firewall-edge", published_port, 8055) == "open"
    assert connect("firewall-data", published_port, 8055) == "timeout"
    # A published port that no rule names is closed to everyone.
    assert connect("firewall-edge", published_port, 9055) == "timeout"
    chain = get("firewall-app").check_output("nft list chain inet aiquiz_filter published")
    assert "ct original proto-dst 8000-8099" in chain, chain


def test_published_port_stays_closed_across_reloads(published_port):
    app = get("firewall-app")
    for cmd in ("systemctl reload nftables", "nft -f /etc/nftables.conf", "systemctl restart nftables"):
        app.check_output(cmd)
        assert connect("firewall-data", published_port, 8055) == "timeout", cmd
        assert connect("firewall-edge", published_port, 8055) == "open", cmd
        assert app.run("nft list table ip fw_published").rc == 0, cmd


def test_published_port_filter_can_be_left_to_another_tool():
    rc, out = run_role({"firewall_published_ports_filter": False}, limit="firewall-app")
    try:
        assert rc == 0, out
        assert get("firewall-app").run("nft list chain inet aiquiz_filter published").rc != 0
    finally:
        rc, out = run_role(limit="firewall-app")
    assert rc == 0, out
