"""The release path on real hosts, in the order an operator lives it.

Converge left release 1.0.0 active on both app hosts behind the edge. The
tests below run in file order: 1.1.0 under constant load (canary on app1,
then app2), 1.2.0 that never gets ready (automatic rollback, traffic stays on
1.1.0; it ran on the third colour, so 1.0.0's containers stay kept),
rollback.yml back to 1.0.0 starting those kept containers, a re-run that
changes nothing, and the
refusals (invalid compose file, image that cannot be pulled, unknown
rollback target). The load generator sends its requests through the edge's
443, published on 127.0.0.1:9443.
"""

import json
import os
import pathlib
import re
import subprocess
import time

from quiz import (APPS, DEPLOY, FAST, INVENTORY, ROLLBACK, ROOT, ansible_playbook, containers, deploy, edge_get,
                  get, ledger, recap, served_releases, state_of, under_load)


def play_seconds(output, play):
    """Seconds of a play in the PHASE TIMINGS table of the audit callback."""
    found = re.search(r"^%s\s+([0-9.]+)\s" % re.escape(play), output, re.M)
    assert found, output[-3000:]
    return float(found.group(1))


def colour_of(name, release):
    return {r["id"]: r["colour"] for r in ledger(name)["releases"]}.get(release)


def test_release_1_0_0_serves_through_the_edge_from_both_hosts():
    assert served_releases() == {"1.0.0"}
    for name in APPS:
        book = ledger(name)
        active = [r for r in book["releases"] if r["state"] == "active"]
        assert [r["id"] for r in active] == ["1.0.0"], (name, book)
        env = get(name).file("/opt/aiquiz/quiz/releases/1.0.0/.env")
        assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
        assert "QUIZ_DATABASE_URL=" in env.content_string
        compose = get(name).file("/opt/aiquiz/quiz/releases/1.0.0/compose.yml")
        assert compose.mode == 0o640
        assert "password" not in compose.content_string.lower()


def test_status_page_and_api_work_end_to_end():
    status, body = edge_get("/api/quizzes")
    assert status == 200
    assert isinstance(json.loads(body), (list, dict))
    status, body = edge_get("/")
    assert status == 200 and "<html" in body.lower()


def test_release_1_1_0_under_load_fails_no_request():
    (rc, out), load = under_load(lambda: deploy("1.1.0"))
    print(json.dumps(load, indent=1))
    assert rc == 0, out[-3000:]
    assert load["failed"] == 0, load["failures"]
    assert load["requests"] > 1000
    assert "Watch the canary's error rate" in out
    assert served_releases() == {"1.1.0"}
    for name in APPS:
        assert state_of(name, "1.1.0") == "active"
        assert state_of(name, "1.0.0") == "standby"
        # The old colour is stopped, not removed: a rollback starts it again.
        ps = get(name).check_output("docker ps -a --filter label=ops.aiquiz.release=1.0.0 --format '{{.State}}'")
        assert set(ps.split()) == {"exited"}, (name, ps)


def test_release_that_never_gets_ready_is_rolled_back_automatically():
    (rc, out), load = under_load(lambda: deploy("1.2.0", compose_app_health_deadline=25))
    print(json.dumps(load, indent=1))
    assert rc != 0
    assert "release 1.2.0 of quiz failed and was rolled back" in out
    assert "Traffic is on release 1.1.0" in out
    assert load["failed"] == 0, load["failures"]
    assert served_releases() == {"1.1.0"}
    # The canary host failed; the rollout stopped before app2.
    assert state_of("compose_app-app1", "1.2.0") == "failed"
    assert state_of("compose_app-app2", "1.2.0") is None
    assert state_of("compose_app-app1", "1.1.0") == "active"
    # Third colour: 1.2.0 went to amber, neither the active release's colour
    # (green) nor the previous good one's (blue), whose containers are kept.
    assert (colour_of("compose_app-app1", "1.0.0"), colour_of("compose_app-app1", "1.1.0"),
            colour_of("compose_app-app1", "1.2.0")) == ("blue", "green", "amber")
    assert ledger("compose_app-app1")["colours"] == {"blue": "1.0.0", "green": "1.1.0", "amber": "1.2.0"}
    for name in APPS:
        kept = containers(name, workload="quiz", release="1.0.0")
        assert kept and {c[1] for c in kept.values()} == {"exited"}, (name, kept)


def test_rollback_playbook_right_after_a_failed_deploy_starts_the_kept_containers():
    # Issue 15: 1.1.0 live, 1.0.0 kept, 1.2.0 failed and rolled back
    # automatically (the tests above). With two colours 1.2.0 had replaced
    # 1.0.0's containers and this rollback recreated them (32 s of play time).
    kept = {name: containers(name, workload="quiz", release="1.0.0") for name in APPS}
    (rc, out), load = under_load(lambda: ansible_playbook(ROLLBACK, {"compose_app_rollback_to": "1.0.0"}))
    print(json.dumps(load, indent=1))
    assert rc == 0, out[-3000:]
    # Printed, not asserted: on a loaded machine every task costs seconds
    # (the same fast path measured 5 s on the idle lab, 28 s with both cores
    # busy); the no-recreate assertions below are what this test proves.
    print("rollback.yml after a failed deploy, 2 app hosts: %.1f s of play time (aim < 5 s)"
          % play_seconds(out, "Roll the workload back"))
    assert load["failed"] == 0, load["failures"]
    assert "Start the kept containers of quiz_1-0-0_blue" in out
    assert "Render the release's compose file" not in out
    assert "Say why the fast path gave up" not in out
    assert served_releases() == {"1.0.0"}
    for name in APPS:
        assert state_of(name, "1.0.0") == "active"
        assert state_of(name, "1.1.0") == "standby"
        # The same containers, started again: none created, none replaced.
        now = containers(name, workload="quiz", release="1.0.0")
        assert set(now) == set(kept[name]), (name, kept[name], now)
        assert {c[1] for c in now.values()} == {"running"}, (name, now)


def test_redeploying_the_active_release_changes_nothing():
    rc, out = deploy("1.0.0")
    assert rc == 0, out[-3000:]
    assert set(recap(out)) >= set(APPS), out[-3000:]
    for name, counts in recap(out).items():
        assert counts["changed"] == 0, (name, out[-3000:])


def test_invalid_compose_file_is_refused_before_anything_stops():
    bad = [{"name": "api", "image": "registry1:5000/aiquiz/quiz-api:1.1.0", "port": 8080, "offset": 1,
            "upstream": "quiz_api", "compose": {"restart": "sometimes"}}]
    rc, out = deploy("1.1.0", compose_app_services=bad)
    assert rc != 0
    assert "docker compose config" in out or "restart" in out
    assert served_releases() == {"1.0.0"}
    for name in APPS:
        assert state_of(name, "1.0.0") == "active"


def test_image_that_cannot_be_pulled_leaves_the_running_release_serving():
    rc, out = deploy("9.9.9")
    assert rc != 0
    assert "could not be pulled" in out and "Nothing was stopped or switched" in out
    assert served_releases() == {"1.0.0"}
    assert state_of("compose_app-app1", "9.9.9") is None


def test_rollback_to_an_unknown_release_names_the_releases_that_exist():
    rc, out = ansible_playbook(ROLLBACK, {"compose_app_rollback_to": "0.0.1"})
    assert rc != 0
    assert "0.0.1" in out and "1.0.0" in out and "1.1.0" in out
    assert served_releases() == {"1.0.0"}


def test_rollback_refuses_a_release_given_as_an_extra_var():
    # A deploy's -e compose_app_release outranks the release the rollback reads from the ledger.
    rc, out = ansible_playbook(ROLLBACK, {"compose_app_release": "1.1.0"})
    assert rc != 0
    assert "compose_app_rollback_to" in out and "compose_app_release=1.1.0" in out and "Nothing was changed" in out
    assert served_releases() == {"1.0.0"}


def test_secrets_never_reach_the_output_or_the_audit_log():
    secret = get("compose_app-app1").check_output("grep ^QUIZ_DATABASE_URL= /opt/aiquiz/quiz/releases/1.0.0/.env")
    password = re.search(r"://[^:]+:([^@]+)@", secret).group(1)
    assert len(password) >= 8
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(["ansible-playbook", "-i", os.path.dirname(INVENTORY), str(DEPLOY), "-vv", "--diff",
                           "-e", json.dumps(dict(FAST, compose_app_release="1.1.0", compose_app_canary_percent=0))],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert password not in proc.stdout + proc.stderr
    audit = pathlib.Path.home() / ".ansible" / "aiquiz-audit"
    for log in audit.glob("*"):
        if log.is_file():
            assert password not in log.read_text(errors="replace"), log


def test_fast_rollback_starts_the_kept_containers_under_load():
    rc, out = deploy("1.1.0", compose_app_canary_percent=0)
    assert rc == 0, out[-3000:]
    (rc, out), load = under_load(lambda: ansible_playbook(ROLLBACK))
    print(json.dumps(load, indent=1))
    assert rc == 0, out[-3000:]
    assert load["failed"] == 0, load["failures"]
    assert "Start the kept containers of quiz_1-0-0_blue" in out
    assert "Render the release's compose file" not in out
    assert served_releases() == {"1.0.0"}
    for name in APPS:
        assert state_of(name, "1.0.0") == "active"
        assert state_of(name, "1.1.0") == "standby"
        # 1.1.0 stops in the background once the edge has drained it.
        states = ""
        for _attempt in range(60):
            states = get(name).check_output(
                "docker ps -a --filter label=ops.aiquiz.release=1.1.0 --format '{{.State}}' | sort -u")
            if states.split() == ["exited"]:
                break
            time.sleep(0.5)
        assert states.split() == ["exited"], (name, states)


def test_fast_rollback_recreates_a_release_whose_containers_are_gone():
    rc, out = deploy("1.1.0", compose_app_canary_percent=0)
    assert rc == 0, out[-3000:]
    get("compose_app-app1").check_output("docker compose -p quiz_1-0-0_blue down")
    rc, out = ansible_playbook(ROLLBACK)
    assert rc == 0, out[-3000:]
    assert "Say why the fast path gave up" in out
    assert re.search(r"compose_app-app1\s*:.*rescued=1", out), out[-3000:]
    assert served_releases() == {"1.0.0"}
    for name in APPS:
        assert state_of(name, "1.0.0") == "active"
