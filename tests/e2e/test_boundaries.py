"""Attack tests on the lab after go-live: each trust boundary is attacked from
the lab's own hosts, as a caller on the network or a local user would
(docs/admin/security.md lists them with their results)."""

import datetime
import json
import pathlib
import re
import sys
import time

from helpers import CANARIES, ROOT, CanarySampler, lab_exec, monitoring_api, run_playbook, scan_host_logs

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


def alerts_raised_since(started):
    """Prometheus' alerts (pending or firing) that became active after `started` (epoch seconds)."""
    raised = []
    for alert in monitoring_api(9090, "/api/v1/alerts")["data"]["alerts"]:
        if epoch(alert["activeAt"]) >= started:
            raised.append(alert["labels"])
    return raised


def epoch(stamp):
    """Seconds since the epoch of an ISO-8601 time from Prometheus or Alertmanager (nanoseconds, Z)."""
    return datetime.datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", stamp).replace("Z", "+00:00")).timestamp()


def test_deploy_under_load_loses_no_request_with_the_ports_closed(golive):
    started = time.time()
    try:
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
        # Each app host's alerts were silenced on mon1's Alertmanager while it was deployed, and
        # the silence lifted when it was done (compose_app_silence_alerts). Earlier deploys of the
        # same release (the AWX job templates) left expired silences of their own.
        silences = [s for s in monitoring_api(9093, "/api/v2/silences")
                    if s["comment"].startswith("deploy of release 1.1.0 of quiz on ") and epoch(s["startsAt"]) >= started]
        assert sorted((s["comment"], s["status"]["state"]) for s in silences) == [
            ("deploy of release 1.1.0 of quiz on app1", "expired"),
            ("deploy of release 1.1.0 of quiz on app2", "expired")], silences
        for silence in silences:
            host = silence["comment"].rsplit(" ", 1)[1]
            assert sorted((m["name"], m["value"], m["isEqual"]) for m in silence["matchers"]) == [
                ("alertname", "HostDown", False), ("instance", host, True)]
        # Nothing was raised, pending or firing, that the deploy's silences do not cover. Latency
        # alerts aside: on this 2-core machine the other test stages beside the lab decide them.
        raised = alerts_raised_since(started)
        print("alerts raised during the deploy:", json.dumps(raised))
        unexpected = [labels for labels in raised
                      if labels.get("alertname") not in ("ProbeSlow", "ApiLatencyP99High")
                      and (labels.get("instance") not in ("app1", "app2") or labels.get("alertname") == "HostDown")]
        assert not unexpected, unexpected
    finally:
        # Back to go-live's release for the tests that follow, whatever failed above.
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


# Boundary 11: what the monitoring host reads. Each exporter's port, from the
# host that must get in (mon1) and from lab hosts that must not.
MONITORING_PORTS = {("app2", 9100): "/metrics", ("data1", 9187): "/metrics", ("data1", 9121): "/metrics",
                    ("data1", 15692): "/metrics", ("edge1", 3903): "/metrics", ("edge1", 9113): "/metrics"}
# Prometheus and Alertmanager on mon1: HTTPS with the own CA and basic auth
# (password files readable by root on mon1, so none goes on a command line).
WEB_GET = ("import base64,ssl,sys,urllib.request,urllib.error\n"
           "ctx=ssl.create_default_context(cafile='/etc/aiquiz/tls/aiquiz-ca.pem')\n"
           "req=urllib.request.Request(sys.argv[1])\n"
           "if len(sys.argv)>2: req.add_header('Authorization','Basic '+base64.b64encode((sys.argv[2]+':'+"
           "open(sys.argv[3]).read().strip()).encode()).decode())\n"
           "try:\n print(urllib.request.urlopen(req,timeout=3,context=ctx).status)\n"
           "except urllib.error.HTTPError as e:\n print(e.code)\n"
           "except OSError as e:\n print('refused' if 'refused' in str(e) else 'timeout')\n")
WEB_SECRETS = {9090: "/etc/prometheus/secrets/prometheus.password",
               9093: "/etc/prometheus/secrets/alertmanager.password"}


def test_exporters_answer_the_monitoring_host_only(golive):
    verdicts = {(src, target, port): http_from(src, "http://%s:%d%s" % (target, port, path))
                for (target, port), path in MONITORING_PORTS.items()
                for src in ("mon1", "app1", "edge1") if src != target}
    verdicts.update({(src, "mon1", port): lab_exec(src, "python3", "-c", WEB_GET,
                                                   "https://mon1:%d/-/ready" % port).stdout.strip()
                     for port in WEB_SECRETS for src in ("app1", "edge1")})
    leaked = {k: v for k, v in verdicts.items() if k[0] != "mon1" and v not in ("timeout", "refused")}
    assert not leaked, "monitoring ports answered a lab host that is not the monitoring host: %s" % leaked
    allowed = {k: v for k, v in verdicts.items() if k[0] == "mon1"}
    assert set(allowed.values()) == {"200"}, allowed
    # On mon1 itself: no plain HTTP, no answer without the right user.
    for port, secret in WEB_SECRETS.items():
        url = "https://mon1:%d/-/ready" % port
        seen = (http_from("mon1", "http://mon1:%d/-/ready" % port),
                lab_exec("mon1", "python3", "-c", WEB_GET, url).stdout.strip(),
                lab_exec("mon1", "python3", "-c", WEB_GET, url, "prometheus", secret).stdout.strip())
        assert seen == ("400", "401", "200"), (port, seen)


# A sender's view of the log receiver: TLS to mon1:19532, optionally with a
# client certificate, then an upload request; prints what came back.
JOURNAL_UPLOAD = ("import socket,ssl,sys\n"
                  "ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT);ctx.check_hostname=False;ctx.verify_mode=ssl.CERT_NONE\n"
                  "if len(sys.argv)>2: ctx.load_cert_chain(sys.argv[2],sys.argv[3])\n"
                  "body=b'MESSAGE=forged by an attacker\\n_HOSTNAME=forged\\n\\n'\n"
                  "req=b'POST /upload HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/vnd.fdo.journal\\r\\n'"
                  "+b'Content-Length: %d\\r\\n\\r\\n'%len(body)+body\n"
                  "try:\n"
                  " s=ctx.wrap_socket(socket.create_connection((sys.argv[1],19532),timeout=5))\n"
                  " s.sendall(req);print(repr(s.recv(200)) or 'empty')\n"
                  "except (ssl.SSLError,OSError) as e:\n print('refused: %s'%e)\n")


def test_log_receiver_takes_uploads_from_own_ca_certificates_only(golive):
    """Every lab host may reach 19532 (each one uploads its journal), so the
    firewall is no boundary there: the client certificate is. Without one, and
    with one from another CA, nothing reaches systemd-journal-remote."""
    made = lab_exec("app1", "sh", "-c",
                    "cd /run && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
                    "-subj /CN=app1 -keyout attacker.key -out attacker.pem 2>/dev/null && echo ok")
    assert made.stdout.strip() == "ok", made.stderr
    try:
        bare = lab_exec("app1", "python3", "-c", JOURNAL_UPLOAD, "mon1").stdout.strip()
        other_ca = lab_exec("app1", "python3", "-c", JOURNAL_UPLOAD, "mon1", "/run/attacker.pem",
                            "/run/attacker.key").stdout.strip()
    finally:
        lab_exec("app1", "rm", "-f", "/run/attacker.key", "/run/attacker.pem")
    for verdict in (bare, other_ca):
        assert verdict.startswith("refused") or verdict in ("b''", "empty"), verdict
        assert "HTTP/1.1" not in verdict, verdict
    # The same request with app1's own uploader certificate is answered: the
    # refusals above are the receiver's, not a broken client.
    conf = dict(line.split("=", 1) for line in lab_exec(
        "app1", "cat", "/etc/systemd/journal-upload.conf.d/aiquiz.conf").stdout.splitlines() if "=" in line)
    own = lab_exec("app1", "python3", "-c", JOURNAL_UPLOAD.replace("forged by an attacker", "boundary control"),
                   "mon1", conf["ServerCertificateFile"], conf["ServerKeyFile"]).stdout.strip()
    assert "HTTP/1.1" in own, own
    forged = lab_exec("mon1", "journalctl", "-D", "/var/log/journal/remote", "--no-pager", "-q",
                      "_HOSTNAME=forged").stdout
    assert "forged by an attacker" not in forged
    print("log receiver: no certificate -> %s; another CA -> %s" % (bare, other_ca))


# Last: the journals and logs after every run above (go-live, deploy, backup, restore).
def test_no_secret_in_any_journal_or_log(golive):
    leaked = {}
    for host in golive.sampler.hosts:
        found = scan_host_logs(host)
        assert "journal" in found["sources"]
        if found["hits"]:
            leaked[host] = found["hits"]
    assert not leaked, json.dumps(leaked, indent=1)
