"""Behaviour of the docker role.

docker-debian13 runs the `distribution` path (Debian's docker.io and the
Compose v2 plugin) with the lab's engine settings: the engine answers with
the configured daemon.json, containers with a network start and answer, a
published port answers from the host, a re-run does not restart the engine,
and a value the engine refuses never replaces the running configuration.

docker-debian12 runs the `docker` (repository) path as far as it goes with
Docker's repository out of reach: key pinned and written, one deb822 source
with Signed-By, older conflicting sources converged. Its packages are NOT
installed (docker_install_packages: false), so there is no engine to test
there.
"""

import hashlib
import json
import os
import pathlib
import re

import pytest
import testinfra

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "molecule" / "docker"
CONVERGE = SCENARIO / "converge.yml"
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
D13 = "docker-debian13"
D12 = "docker-debian12"
IMAGE = "docker-test/echo:1"
TEST_KEY_FPR = "E850A36407CAD05497573DB2D1D600C875FBDD32"
DOCKER_FPR = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
DROPIN_DIR = "/etc/systemd/system/docker.service.d"
# The proxy password in molecule.yml's docker_service_environment.
PROXY_CANARY = "canary-docker-proxy-7Qm2"
PROXY = "http://aiquiz:%s@proxy.invalid:3128" % PROXY_CANARY


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def d13():
    return get(D13)


@pytest.fixture(scope="module")
def d12():
    return get(D12)


def engine_info(host):
    return json.loads(host.check_output("docker info --format '{{json .}}'"))


def engine_pid(host):
    return host.check_output("systemctl show -p MainPID --value docker.service").strip()


def plain(output):
    """The output without colour codes, whitespace collapsed (long messages wrap)."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", output).split())


def recap(output, name):
    # Molecule exports ANSIBLE_FORCE_COLOR: drop the colour codes first.
    output = re.sub(r"\x1b\[[0-9;]*m", "", output)
    match = re.search(r"^%s\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)" % re.escape(name),
                      output, re.M)
    assert match, output[-2000:]
    return {"changed": int(match.group(1)), "unreachable": int(match.group(2)), "failed": int(match.group(3))}


@pytest.fixture(scope="module")
def echo_image(d13):
    """A ~12 MB image imported from the host's own python3 (no registry)."""
    script = (SCENARIO / "files" / "echo_image.py").read_text()
    d13.check_output("python3 -c %s %s", script, IMAGE)
    return IMAGE


# --- Debian 13: distribution path --------------------------------------------

def test_engine_is_enabled_and_running(d13):
    service = d13.service("docker")
    assert service.is_enabled
    assert service.is_running
    assert engine_info(d13)["ServerVersion"]


def test_engine_runs_with_the_configured_settings(d13):
    info = engine_info(d13)
    assert info["LoggingDriver"] == "local"
    assert info["LiveRestoreEnabled"] is True
    assert info["DefaultAddressPools"] == [{"Base": "10.213.0.0/16", "Size": 24}]
    index = info["RegistryConfig"]["IndexConfigs"]
    assert index["registry1:5000"]["Secure"] is False


def test_metrics_endpoint_answers_on_the_configured_address(d13):
    out = d13.check_output("curl -sf --max-time 5 http://127.0.0.1:9323/metrics")
    assert "engine_daemon_engine_info" in out


def test_daemon_json_is_root_owned_and_holds_the_rotation(d13):
    daemon = d13.file("/etc/docker/daemon.json")
    assert daemon.user == "root" and daemon.group == "root"
    assert daemon.mode == 0o644
    config = json.loads(daemon.content_string)
    assert config["log-opts"] == {"max-size": "20m", "max-file": "5"}
    assert config["metrics-addr"] == "127.0.0.1:9323"


def test_service_environment_reaches_the_running_engine(d13):
    pid = engine_pid(d13)
    environ = d13.check_output("tr '\\0' '\\n' < /proc/%s/environ", pid).splitlines()
    assert "DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1" in environ
    assert "HTTPS_PROXY=%s" % PROXY in environ
    dropin = d13.file(DROPIN_DIR + "/aiquiz-environment.conf")
    assert dropin.user == "root" and dropin.mode & 0o022 == 0


def test_no_other_user_reads_the_service_environment(d13):
    """The proxy password: not in a file other users may read, nor in what
    systemd shows every user about the unit."""
    seen = d13.run("runuser -u nobody -- sh -c %s",
                   "cat %s/* 2>&1; systemctl show docker.service -p Environment -p EnvironmentFiles" % DROPIN_DIR)
    assert PROXY_CANARY not in seen.stdout + seen.stderr, "nobody reads the proxy password"
    for path in d13.check_output("grep -rl -- %s %s || true", PROXY_CANARY, DROPIN_DIR).split():
        held = d13.file(path)
        assert (held.user, held.group, held.mode) == ("root", "root", 0o600), path


def test_a_diff_run_never_prints_the_service_environment(d13, monkeypatch, tmp_path):
    """A changed proxy password, then the old one back, each run at -v --diff
    with the audit trail on: neither value in the output or the trail."""
    rotated = "canary-docker-proxy-rotated-9Xk4"
    monkeypatch.setenv("ANSIBLE_DIFF_ALWAYS", "1")
    monkeypatch.setenv("AIQUIZ_AUDIT_DIR", str(tmp_path))
    # AIQUIZ_QUOTING: characters the environment file must keep as they are.
    environment = {"DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE": "1", "NO_PROXY": "*",
                   "HTTPS_PROXY": PROXY.replace(PROXY_CANARY, rotated), "AIQUIZ_QUOTING": "a\"b\\c$d`e%f 'g' ${HOME}"}
    try:
        rc, out = ansible_playbook(CONVERGE, limit=D13, verbosity=1,
                                   extra_vars={"docker_service_environment": environment})
        assert rc == 0, out[-3000:]
        assert recap(out, D13)["changed"] > 0
        environ = d13.check_output("tr '\\0' '\\n' < /proc/%s/environ", engine_pid(d13)).splitlines()
        assert "HTTPS_PROXY=" + environment["HTTPS_PROXY"] in environ
        assert "AIQUIZ_QUOTING=" + environment["AIQUIZ_QUOTING"] in environ
    finally:
        rc_back, out_back = ansible_playbook(CONVERGE, limit=D13, verbosity=1)
    assert rc_back == 0, out_back[-3000:]
    trail = "".join(path.read_text() for path in tmp_path.rglob("*") if path.is_file())
    for where, text in (("output", out), ("output of the run back", out_back), ("audit trail", trail)):
        for secret in (rotated, PROXY_CANARY):
            assert secret not in text, "%s printed in the %s" % (secret, where)


def test_a_config_change_restarts_the_engine_after_a_burst_of_restarts(d13):
    """docker.service refuses a fourth start within 60 s (StartLimitBurst=3); a run that
    changes the configuration right after a burst of restarts still restarts the engine."""
    for _attempt in range(4):
        d13.run("systemctl restart docker.service")
    throttled = d13.run("systemctl restart docker.service")
    assert throttled.rc != 0 and "too often" in throttled.stderr, throttled.stderr
    try:
        rc, out = ansible_playbook(CONVERGE, limit=D13, verbosity=1,
                                   extra_vars={"docker_service_environment": {"NO_PROXY": "*.burst.test"}})
        assert rc == 0, out[-3000:]
        assert d13.service("docker").is_running
        assert "NO_PROXY=*.burst.test" in d13.check_output("tr '\\0' '\\n' < /proc/%s/environ", engine_pid(d13))
    finally:
        rc_back, out_back = ansible_playbook(CONVERGE, limit=D13, verbosity=1)
    assert rc_back == 0, out_back[-3000:]
    assert d13.service("docker").is_running


def test_a_bad_environment_name_stops_before_any_change(d13):
    before = d13.check_output("sha256sum %s/*", DROPIN_DIR)
    pid = engine_pid(d13)
    rc, out = ansible_playbook(CONVERGE, limit=D13, extra_vars={"docker_service_environment": {"HTTPS-PROXY": "x"}})
    assert rc != 0
    assert "docker_service_environment" in plain(out) and "HTTPS-PROXY" in plain(out), out[-3000:]
    assert recap(out, D13)["changed"] == 0
    assert d13.check_output("sha256sum %s/*", DROPIN_DIR) == before
    assert engine_pid(d13) == pid


def test_compose_v2_answers(d13):
    version = json.loads(d13.check_output("docker compose version --format json"))["version"]
    assert int(version.lstrip("v").split(".")[0]) >= 2


def test_docker_users_reach_the_engine_without_root(d13):
    assert "docker" in d13.user("deploy").groups
    out = d13.check_output("su - deploy -c %s", "docker version --format '{{json .Server.Version}}'")
    assert json.loads(out) == engine_info(d13)["ServerVersion"]


def test_containers_on_a_user_network_start_and_answer(d13, echo_image):
    d13.run("docker rm -f docker-test-server; docker network rm docker-test-net")
    try:
        d13.check_output("docker network create docker-test-net")
        subnet = json.loads(d13.check_output("docker network inspect docker-test-net --format '{{json .IPAM.Config}}'"))
        # Carved out of the configured default-address-pools.
        assert subnet[0]["Subnet"].startswith("10.213.")
        d13.check_output("docker run -d --name docker-test-server --network docker-test-net %s", echo_image)
        server_id = d13.check_output("docker inspect --format '{{.Config.Hostname}}' docker-test-server").strip()
        out = ""
        for _attempt in range(20):
            cmd = d13.run("docker run --rm --network docker-test-net %s /usr/bin/python3 -I -S /srv/echo.py "
                          "docker-test-server 8080", echo_image)
            out = cmd.stdout + cmd.stderr
            if cmd.rc == 0:
                break
            d13.run("sleep 0.5")
        assert "200 OK" in out and "hello from %s" % server_id in out, out
    finally:
        d13.run("docker rm -f docker-test-server; docker network rm docker-test-net")


def test_published_port_answers_from_the_host(d13, echo_image):
    d13.run("docker rm -f docker-test-published")
    try:
        d13.check_output("docker run -d --name docker-test-published -p 127.0.0.1:18080:8080 %s", echo_image)
        cmd = d13.run("curl -sf --retry 20 --retry-delay 1 --retry-all-errors --max-time 30 http://127.0.0.1:18080/")
        assert cmd.rc == 0, cmd.stderr
        assert cmd.stdout.startswith("hello from ")
    finally:
        d13.run("docker rm -f docker-test-published")


VOLUME = "docker-test-data"
# Reads and writes the volume from a container, as the application would.
IN_VOLUME = "docker run --rm -v %s:/data %s /usr/bin/python3 -I -S -c %s"


def in_volume(host, image, code):
    return host.check_output(IN_VOLUME, VOLUME, image, code)


def test_docker_volume_backup_and_restore_keep_contents_and_owners(d13, echo_image):
    d13.run("docker volume rm -f %s" % VOLUME)
    d13.check_output("docker volume create %s" % VOLUME)
    in_volume(d13, echo_image, "import os; open('/data/answers.txt', 'w').write('v1'); "
                               "os.chown('/data/answers.txt', 1000, 1000)")
    rc, out = ansible_playbook(ROOT / "playbooks" / "backup.yml", {"backup_hosts": D13, "backup_steps": ["files"]},
                               timeout=900)
    assert rc == 0, out
    entry = json.loads(d13.check_output("cat /var/lib/aiquiz/backup/catalogue.json"))["backups"][-1]
    assert (entry["kind"], entry["subject"], entry["status"]) == ("files", "volume-" + VOLUME, "good")
    # A restic snapshot of the volume's _data, tagged with the set, in the local target's repository.
    assert entry["location"].startswith("restic:")
    listed = json.loads(d13.check_output(
        "RESTIC_PASSWORD_FILE=/etc/aiquiz-backup/passphrase RESTIC_CACHE_DIR=/var/cache/aiquiz-backup/restic "
        "restic -r /var/backups/aiquiz/restic snapshots --json --tag subject:volume-%s", VOLUME))
    assert listed[-1]["paths"] == ["/var/lib/docker/volumes/%s/_data" % VOLUME] and "kind:files" in listed[-1]["tags"]
    in_volume(d13, echo_image, "open('/data/answers.txt', 'w').write('v2'); open('/data/stray', 'w').write('x')")
    rc, out = ansible_playbook(ROOT / "playbooks" / "restore.yml",
                               {"restore_host": D13, "restore_kind": "files", "restore_subject": "volume-" + VOLUME})
    assert rc == 0, out
    seen = in_volume(d13, echo_image, "import os; print(open('/data/answers.txt').read(), "
                                      "os.stat('/data/answers.txt').st_uid, sorted(os.listdir('/data')))")
    assert seen.strip() == "v1 1000 ['answers.txt']"
    aside = d13.check_output("ls -d /var/lib/docker/volumes/%s/_data.before-restore-* | tail -1", VOLUME)
    assert d13.file(aside + "/stray").exists


def test_second_converge_changes_nothing_and_keeps_the_engine(d13):
    before = engine_pid(d13)
    rc, out = ansible_playbook(CONVERGE, limit=D13)
    assert rc == 0, out[-3000:]
    assert recap(out, D13) == {"changed": 0, "unreachable": 0, "failed": 0}
    assert engine_pid(d13) == before


@pytest.mark.parametrize("extra, refusal", [
    ({"log-level": "loud"}, "invalid logging level: loud"),
    ({"no-such-option": True}, "don't match any configuration option: no-such-option"),
])
def test_a_value_the_engine_refuses_never_replaces_the_running_config(d13, extra, refusal):
    daemon = d13.file("/etc/docker/daemon.json")
    before_sum = hashlib.sha256(daemon.content).hexdigest()
    before_pid = engine_pid(d13)
    rc, out = ansible_playbook(CONVERGE, limit=D13, extra_vars={"docker_daemon_extra": extra})
    assert rc != 0
    assert refusal in plain(out), out[-3000:]
    assert recap(out, D13)["failed"] == 1
    assert hashlib.sha256(d13.file("/etc/docker/daemon.json").content).hexdigest() == before_sum
    assert engine_pid(d13) == before_pid
    assert engine_info(d13)["LoggingDriver"] == "local"


# --- Debian 12: repository path, without the repository ------------------------

APT_SOURCES = """
import apt_pkg, json
apt_pkg.init()
sources = apt_pkg.SourceList()
sources.read_main_list()
print(json.dumps([[m.uri, m.dist] for m in sources.list]))
"""


def test_apt_reads_one_docker_source_and_no_conflict(d12):
    # Before the role, the old docker.list made apt refuse its sources
    # ("Conflicting values set for option Signed-By").
    entries = json.loads(d12.check_output("python3 -c %s", APT_SOURCES))
    docker = [e for e in entries if "download.docker.com" in e[0]]
    assert docker == [["https://download.docker.com/linux/debian/", "bookworm"]]
    assert not d12.file("/etc/apt/sources.list.d/docker.list").exists
    source = d12.file("/etc/apt/sources.list.d/docker.sources")
    assert source.mode == 0o644 and source.user == "root"
    fields = dict(line.split(": ", 1) for line in source.content_string.splitlines()
                  if line and not line.startswith("#"))
    assert fields["Signed-By"] == "/etc/apt/keyrings/docker.asc"
    assert fields["Components"] == "stable"


def test_mixed_source_file_keeps_its_other_entry(d12):
    lines = d12.file("/etc/apt/sources.list.d/mixed.list").content_string.splitlines()
    assert "deb-src http://deb.debian.org/debian bookworm main" in lines
    assert all(line.startswith("#") for line in lines if "download.docker.com" in line)


def test_keyring_holds_exactly_the_pinned_key(d12):
    keyring = d12.file("/etc/apt/keyrings/docker.asc")
    assert keyring.mode == 0o644 and keyring.user == "root"
    out = d12.check_output("d=$(mktemp -d); gpg --homedir $d --batch --with-colons --show-keys "
                           "/etc/apt/keyrings/docker.asc; rm -rf $d")
    assert [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")] == [TEST_KEY_FPR]


def test_repository_path_reruns_clean_and_says_the_engine_was_not_configured(d12):
    rc, out = ansible_playbook(CONVERGE, limit=D12)
    assert rc == 0, out[-3000:]
    assert recap(out, D12) == {"changed": 0, "unreachable": 0, "failed": 0}
    assert "no Docker engine is installed and docker_install_packages is false" in plain(out), out[-3000:]
    assert d12.run("dpkg-query -W docker-ce").rc != 0


def test_a_key_with_another_fingerprint_is_refused(d12):
    before = d12.file("/etc/apt/keyrings/docker.asc").content
    # The test key against Docker's real fingerprint (the role's default).
    rc, out = ansible_playbook(CONVERGE, limit=D12, extra_vars={"docker_repository_key_fingerprint": DOCKER_FPR})
    assert rc != 0
    assert "has the primary fingerprint(s) %s" % TEST_KEY_FPR in plain(out), out[-3000:]
    assert "not the pinned %s" % DOCKER_FPR in plain(out)
    assert d12.file("/etc/apt/keyrings/docker.asc").content == before


def test_distribution_source_on_debian12_stops_for_compose_v2(d12):
    rc, out = ansible_playbook(CONVERGE, limit=D12, extra_vars={"docker_install_source": "distribution"})
    assert rc != 0
    assert "DOCKER FAILED on %s: nothing was changed" % D12 in plain(out), out[-3000:]
    assert "Compose v1" in plain(out)
    assert recap(out, D12)["changed"] == 0
    assert d12.run("dpkg-query -W docker.io").rc != 0


def test_check_mode_on_a_host_with_no_engine_previews_and_changes_nothing(d12):
    extra = {"docker_install_source": "distribution", "docker_compose_v2_required": False,
             "docker_install_packages": True}
    rc, out = ansible_playbook(CONVERGE, limit=D12, check=True, extra_vars=extra)
    assert rc == 0, out[-3000:]
    assert recap(out, D12)["changed"] > 0
    assert d12.run("dpkg-query -W docker.io").rc != 0
    assert not d12.file("/etc/docker/daemon.json").exists


# Last: it changes the host's source. Debian 12's own engine (20.10) has no
# `dockerd --validate`, so daemon.json gets the JSON syntax check only.
def test_distribution_path_on_debian12_without_compose_v2_configures_engine_20(d12):
    # Docker's repository is out of reach: its source would fail apt-get update.
    d12.check_output("rm -f /etc/apt/sources.list.d/docker.sources")
    extra = {"docker_install_source": "distribution", "docker_compose_v2_required": False,
             "docker_install_packages": True, "docker_daemon_log_driver": "local", "docker_daemon_log_max_size": "5m",
             # The engine only: Compose v1 and its Python dependencies would double the time.
             "docker_distribution_packages": ["docker.io"]}
    rc, out = ansible_playbook(CONVERGE, limit=D12, extra_vars=extra, timeout=900)
    assert rc == 0, out[-3000:]
    assert "--validate" not in d12.check_output("dockerd --help")
    info = engine_info(d12)
    assert info["ServerVersion"].startswith("20.10")
    assert info["LoggingDriver"] == "local"
    assert info["LiveRestoreEnabled"] is True
    assert json.loads(d12.file("/etc/docker/daemon.json").content_string)["log-opts"]["max-size"] == "5m"
    # Debian 12 has no Compose v2 plugin.
    assert d12.run("docker compose version --format json").rc != 0
    rc, out = ansible_playbook(CONVERGE, limit=D12, extra_vars=extra)
    assert rc == 0, out[-3000:]
    assert recap(out, D12)["changed"] == 0
