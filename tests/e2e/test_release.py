"""The platform as go-live left it on the lab: it answers on
https://localhost:8443 through the edge, and a release that never gets ready
is rolled back without users noticing (the fault test of the release path;
molecule/compose_app has the whole story under load)."""

import json
import ssl
import urllib.request

from helpers import run_playbook


def get(path):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the edge's bootstrap certificate until the tls role lands
    req = urllib.request.Request("https://127.0.0.1:8443" + path, headers={"Host": "quiz.aiquiz.lab"})
    with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
        return resp.status, dict(resp.headers), resp.read().decode()


def test_platform_answers_through_the_edge_on_localhost(golive):
    status, headers, body = get("/version")
    assert status == 200
    assert json.loads(body)["release"] == "1.0.0"
    assert "max-age=" in headers.get("Strict-Transport-Security", "")
    assert headers.get("X-Content-Type-Options") == "nosniff"
    status, headers, body = get("/api/quizzes")
    assert status == 200 and "quizzes" in json.loads(body)


def test_release_failing_readiness_is_rolled_back_and_users_stay_on_the_old_one(golive):
    run = run_playbook("playbooks/deploy.yml", "-e",
                       json.dumps({"compose_app_release": "1.2.0", "compose_app_health_deadline": 20,
                                   "compose_app_canary_seconds": 5}), json_output=False)
    assert run.rc != 0
    assert "release 1.2.0 of quiz failed and was rolled back" in run.output
    assert "Traffic is on release 1.0.0" in run.output
    releases = {json.loads(get("/version")[2])["release"] for _sample in range(20)}
    assert releases == {"1.0.0"}
