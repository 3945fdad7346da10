"""Attack tests on the lab after go-live: each trust boundary is attacked from
the lab's own hosts, as a caller on the network or a local user would
(docs/admin/security.md lists them with their results)."""

import json
import pathlib
import re
import sys
import time

from helpers import CANARIES, ROOT, CanarySampler, lab_exec, run_playbook, scan_host_logs

sys.path.insert(0, str(ROOT / "tests" / "bench"))
from loadgen import LoadGenerator  # noqa: E402  pylint: disable=wrong-import-position,wrong-import-order

# An HTTP GET from inside a lab host: prints the status, "refused" or "timeout".
HTTP_GET = ("import socket,sys,urllib.request,urllib.error\n"
            "try:\n"
            " r=urllib.request.urlopen(urllib.request.Request(sys.argv[1],headers={'X-Forwarded-For':'203.0.113.9'}),"
            "timeout=3)\n"
            " print(r.status)\n"
            "except urllib.error.HTTPError as e:\n print(e.code)\n"
            "except (ConnectionRefusedError,) as e:\n print('refused')\n"
            "except OSError as e:\n print('refused' if 'refused' in str(e) else 'timeout')\n")

# The published ports of the sample workload's api and web on the app hosts
# (compose_app_colour_ports: blue 8010-8019, green 8020-8029, amber 8030-8039).
APP_PORTS = (8010, 8011, 8020, 8021, 8030, 8031)


def http_from(src, url):
    return lab_exec(src, "python3", "-c", HTTP_GET, url).stdout.strip()


def published_ports(host):
    """Host ports the app host's Docker engine publishes right now."""
    out = lab_exec(host, "docker", "ps", "--format", "{{json .Ports}}").stdout
    ports = set()
    for line in out.splitlines():
        for item in json.loads(line).split(","):
            if "->" in item:
                ports.add(int(item.split("->")[0].rsplit(":", 1)[1]))
    return ports


def app_port_verdicts(sources=("mon1", "data1", "app2", "edge1"), target="app1"):
    ports = sorted(published_ports(target) & set(APP_PORTS))
    assert ports, "no published workload port on %s" % target
    return {(src, port): http_from(src, "http://%s:%d/version" % (target, port))
            for src in sources for port in ports}


def assert_only_edge_reaches(verdicts):
    leaked = {k: v for k, v in verdicts.items() if k[0] != "edge1" and v not in ("timeout", "refused")}
    assert not leaked, "published app ports answered a non-edge host: %s" % leaked
    edge = {k: v for k, v in verdicts.items() if k[0] == "edge1"}
    assert edge and set(edge.values()) == {"200"}, edge


def test_published_app_port_answers_the_edge_only(golive):
    assert_only_edge_reaches(app_port_verdicts())


def test_published_app_ports_stay_closed_after_docker_restart_and_nft_reload(golive):
    restart = lab_exec("app1", "systemctl", "restart", "docker.service")
    assert restart.returncode == 0, restart.stderr
    deadline = time.monotonic() + 60
    while published_ports("app1") & set(APP_PORTS) != {8010, 8011} and time.monotonic() < deadline:
        time.sleep(1)
    assert_only_edge_reaches(app_port_verdicts(sources=("mon1", "edge1")))
    for cmd in (["systemctl", "reload", "nftables.service"], ["nft", "-f", "/etc/nftables.conf"],
                ["systemctl", "restart", "nftables.service"]):
        proc = lab_exec("app1", *cmd)
        assert proc.returncode == 0, (cmd, proc.stderr)
        assert_only_edge_reaches(app_port_verdicts(sources=("mon1", "edge1")))


def test_deploy_under_load_loses_no_request_with_the_ports_closed(golive):
    # The process tables are sampled for secrets meanwhile (item 3: a deploy).
    with CanarySampler(golive.sampler.hosts) as sampler, \
            LoadGenerator("127.0.0.1", 8443, host="quiz.aiquiz.lab", rate=50, threads=4, max_seconds=600) as load:
        time.sleep(2)
        run = run_playbook("playbooks/deploy.yml", "-e", json.dumps({"compose_app_release": "1.1.0",
                                                                     "compose_app_canary_seconds": 5}),
                           json_output=False)
        time.sleep(2)
    assert run.rc == 0, run.explain()
    assert_no_canary_in_processes(sampler)
    assert_no_canary_in_text(run.output, "deploy's output")
    summary = load.summary()
    assert summary["requests"] > 50 and summary["failed"] == 0, summary
    assert_only_edge_reaches(app_port_verdicts(sources=("mon1", "edge1")))
    # Back to go-live's release for the tests that follow.
    back = run_playbook("playbooks/rollback.yml", "-e", json.dumps({"compose_app_rollback_to": "1.0.0"}),
                        json_output=False)
    assert back.rc == 0, back.explain()


def assert_no_canary_in_processes(sampler):
    assert all(sampler.samples[h] > 20 for h in sampler.hosts), sampler.samples
    leaked = {h: lines for h, lines in sampler.hits.items() if lines}
    assert not leaked, "secrets seen in process tables: %s" % json.dumps(leaked, indent=1)


def assert_no_canary_in_text(text, where):
    found = [c for c in CANARIES if c in text]
    assert not found, "%s holds secret values %s" % (where, ["<canary %d>" % CANARIES.index(c) for c in found])


def test_no_secret_in_any_process_table_during_golive(golive):
    assert golive.run.rc == 0, golive.run.explain()
    assert_no_canary_in_processes(golive.sampler)


def test_no_secret_in_golive_output_or_audit_trail(golive):
    assert_no_canary_in_text(golive.run.output, "go-live's output")
    trail = re.search(r"audit trail: (\S+)", golive.run.output)
    assert trail, golive.run.output[-2000:]
    assert_no_canary_in_text(pathlib.Path(trail.group(1)).read_text(encoding="utf-8"), trail.group(1))


def test_no_secret_in_any_process_table_during_backup_and_restore(golive):
    with CanarySampler(golive.sampler.hosts) as sampler:
        backup = run_playbook("playbooks/backup.yml", json_output=False)
        restore = run_playbook("playbooks/restore.yml", "-e", "restore_host=data1", "-e", "restore_kind=redis",
                               json_output=False)
    assert backup.rc == 0, backup.explain()
    assert restore.rc == 0, restore.explain()
    assert_no_canary_in_processes(sampler)
    assert_no_canary_in_text(backup.output + restore.output, "backup's and restore's output")


# Last: the journals and logs after every run above (go-live, deploy, backup, restore).
def test_no_secret_in_any_journal_or_log(golive):
    leaked = {}
    for host in golive.sampler.hosts:
        found = scan_host_logs(host)
        assert "journal" in found["sources"]
        if found["hits"]:
            leaked[host] = found["hits"]
    assert not leaked, json.dumps(leaked, indent=1)
