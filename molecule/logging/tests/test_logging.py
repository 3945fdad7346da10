"""Behaviour of the logging role (playbooks/logging.yml): logging-mon receives
(stunnel with the own CA's client certificates in front of systemd-journal-remote)
and uploads its own journal; logging-app (Debian 12) and logging-trixie (Debian 13)
upload theirs.

Every connection goes to the scenario's own containers.
"""

import os
import time
import uuid

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
PORT = 19532
REMOTE_DIR = "/var/log/journal/remote"
TLS_DIR = "/etc/aiquiz/tls"
TUNNEL = "stunnel@aiquiz-journal-remote.service"
# The documented search command (roles/logging/README.md), by tag and sender.
SEARCH = "journalctl -D " + REMOTE_DIR + " -t aiquiz-marker _HOSTNAME={host} -o cat --no-pager"

# A TLS client in the sender's Python: prints what the receiver answered to an
# HTTP request, or the error that ended the connection.
TLS_CLIENT = r"""
import socket, ssl, sys
host, port, ca, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
if cert:
    ctx.load_cert_chain(cert, key)
try:
    with socket.create_connection((host, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            print("handshake", tls.version())
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = tls.recv(200)
            print("answer", data.split(b"\r\n")[0].decode() if data else "none")
except (ssl.SSLError, OSError) as exc:
    print("refused", type(exc).__name__, exc)
"""


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def mon():
    return get("logging-mon")


@pytest.fixture(scope="module")
def app():
    return get("logging-app")


@pytest.fixture(scope="module")
def receiver_address(mon):
    return mon.ansible("setup", "gather_subset=!all,!min,network")["ansible_facts"]["ansible_default_ipv4"]["address"]


def tls_client(host, address, cert="", key=""):
    ca = TLS_DIR + "/journal-upload/ca.pem"
    cmd = host.run("python3 -c %s %s %s %s %s %s", TLS_CLIENT, address, str(PORT), ca, cert, key)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def found(mon, sender, text):
    cmd = mon.run(SEARCH.format(host=sender) + " | grep -c -F -- %s || true", text)
    return int(cmd.stdout.strip() or 0)


def wait_count(mon, sender, text, want, seconds):
    deadline = time.monotonic() + seconds
    count = found(mon, sender, text)
    while count < want and time.monotonic() < deadline:
        time.sleep(1)
        count = found(mon, sender, text)
    return count


def test_services_enabled_and_running(mon, app):
    for unit in ("systemd-journal-remote.socket", TUNNEL,
                 "aiquiz-logging-vacuum.timer", "systemd-journal-upload.service"):
        assert mon.service(unit).is_enabled, unit
        assert mon.service(unit).is_running, unit
    assert mon.service("systemd-journal-remote.service").is_running
    for sender in (app, get("logging-trixie")):
        assert sender.service("systemd-journal-upload.service").is_enabled
        assert sender.service("systemd-journal-upload.service").is_running


def test_receiver_listens_on_private_address_only(mon, receiver_address):
    listening = [s for s in mon.socket.get_listening_sockets() if s.endswith(":%d" % PORT)]
    assert listening == ["tcp://%s:%d" % (receiver_address, PORT)]
    # journal-remote itself: a local socket that only stunnel's group may open.
    sock = mon.file("/run/aiquiz-journal-remote/http.sock")
    assert sock.is_socket
    assert (sock.user, sock.group, sock.mode) == ("root", "stunnel4", 0o660)
    # Nobody else reaches journal-remote around the tunnel.
    bypass = mon.run("runuser -u nobody -- python3 -c %s",
                     "import socket; socket.socket(socket.AF_UNIX).connect('/run/aiquiz-journal-remote/http.sock')")
    assert bypass.rc != 0 and "PermissionError" in bypass.stderr, bypass.stderr


@pytest.mark.parametrize("host_name,certificate,group", [
    ("logging-mon", "journal-remote", "stunnel4"),
    ("logging-mon", "journal-upload", "systemd-journal-upload"),
    ("logging-app", "journal-upload", "systemd-journal-upload"),
    ("logging-trixie", "journal-upload", "systemd-journal-upload"),
])
def test_private_keys_readable_by_the_service_only(host_name, certificate, group):
    host = get(host_name)
    key = host.file("%s/%s/privkey.pem" % (TLS_DIR, certificate))
    assert key.exists
    assert (key.user, key.group, key.mode) == ("root", group, 0o640)
    members = host.run("getent group %s", group).stdout.strip().split(":")[-1]
    assert members in ("", group)
    # Others are refused.
    assert host.run("runuser -u nobody -- cat %s", key.path).rc != 0


def test_receiver_accepts_a_client_of_the_own_ca(app, receiver_address):
    out = tls_client(app, receiver_address, TLS_DIR + "/journal-upload/fullchain.pem",
                     TLS_DIR + "/journal-upload/privkey.pem")
    assert out.startswith("handshake"), out
    assert "answer HTTP/1.1" in out, out


def test_receiver_refuses_a_client_without_certificate(app, receiver_address):
    out = tls_client(app, receiver_address)
    assert "answer HTTP" not in out, out
    assert "refused" in out, out


def test_receiver_refuses_a_certificate_of_another_ca(app, receiver_address):
    app.run_test("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=logging-app "
                 "-keyout /tmp/rogue-key.pem -out /tmp/rogue-cert.pem")
    out = tls_client(app, receiver_address, "/tmp/rogue-cert.pem", "/tmp/rogue-key.pem")
    assert "answer HTTP" not in out, out
    assert "refused" in out, out


@pytest.mark.parametrize("sender", ["logging-app", "logging-trixie"])
def test_marker_arrives_and_is_found_by_the_search_command(sender, mon):
    """From a Debian 12 and a Debian 13 sender (another systemd's journal-upload)."""
    marker = str(uuid.uuid4())
    get(sender).run_test("logger -t aiquiz-marker %s", marker)
    assert wait_count(mon, sender, marker, 1, 30) == 1


def test_receiver_own_journal_arrives(mon):
    marker = str(uuid.uuid4())
    mon.run_test("logger -t aiquiz-marker %s", marker)
    assert wait_count(mon, "logging-mon", marker, 1, 30) == 1


def test_outage_spooled_nothing_lost_nothing_twice(app, mon):
    """The whole receiver away for two minutes while the sender logs a marker every 5 s: the
    uploader keeps retrying (no start limit), and once the receiver is back every marker arrives,
    none twice."""
    batch = str(uuid.uuid4())
    count = 24
    restarts = "systemctl show -p NRestarts --value systemd-journal-upload.service"
    restarts_before = int(app.run_test(restarts).stdout)
    # The whole receiver away: TLS end, socket and journal-remote.
    mon.run_test("systemctl stop %s systemd-journal-remote.socket systemd-journal-remote.service", TUNNEL)
    away = time.monotonic()
    try:
        for number in range(count):
            app.run_test("logger -t aiquiz-marker %s", "%s-%d" % (batch, number))
            time.sleep(5)
        # The uploader found the receiver away and keeps trying.
        time.sleep(5)
        assert found(mon, "logging-app", batch) == 0
        assert int(app.run_test(restarts).stdout) > restarts_before
    finally:
        mon.run_test("systemctl start systemd-journal-remote.socket systemd-journal-remote.service %s", TUNNEL)
    back = time.monotonic()
    assert wait_count(mon, "logging-app", batch, count, 60) == count
    print("receiver away %.0f s; all %d markers on the receiver %.1f s after it came back"
          % (back - away, count, time.monotonic() - back))
    # A late duplicate would show up now.
    time.sleep(5)
    lines = mon.run_test(SEARCH.format(host="logging-app") + " | grep -F -- %s", batch).stdout.split()
    assert sorted(lines) == sorted("%s-%d" % (batch, number) for number in range(count))


def archived_name(seqnum, seconds):
    """The name journald gives an archived file whose first entry is number `seqnum`, at `seconds`. Vacuuming
    reads only names, and takes files in the order of their sequence numbers, stopping at the first it keeps."""
    return "%s/central@%s-%016x-%016x.journal" % (REMOTE_DIR, "0123456789abcdef" * 2, seqnum, int(seconds * 1000000))


def test_retention_removes_old_archived_files_only(mon):
    unit = mon.run_test("systemctl cat aiquiz-logging-vacuum.service").stdout
    assert "--directory=%s" % REMOTE_DIR in unit
    assert mon.service("aiquiz-logging-vacuum.timer").is_enabled
    now = time.time()
    old, recent = archived_name(1, now - 40 * 86400), archived_name(2, now - 86400)
    try:
        for path in (old, recent):
            mon.run_test("head -c 4096 /dev/urandom > %s", path)
        run = mon.run("systemctl start aiquiz-logging-vacuum.service")
        assert run.rc == 0, run.stderr
        result = mon.run_test("systemctl show -p Result --value aiquiz-logging-vacuum.service").stdout.strip()
        assert result == "success"
        # 40 days is beyond the 30 days kept; 1 day and the file being written are not.
        assert not mon.file(old).exists
        assert mon.file(recent).exists
        assert mon.file(REMOTE_DIR + "/central.journal").exists
    finally:
        mon.run("rm -f %s %s", old, recent)
