"""What the scenario's tests share: the hosts, the edge, the ledger and the
playbooks of the sample workload `quiz`, run as an operator runs them."""

import json
import os
import pathlib
import re
import ssl
import subprocess
import sys
import time
import urllib.request

import testinfra
import yaml

from conftest import ansible_playbook

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "bench"))
from loadgen import LoadGenerator  # noqa: E402  pylint: disable=wrong-import-position

# Molecule exports ANSIBLE_FORCE_COLOR=1 to its verifier, which beats the
# ANSIBLE_NOCOLOR of conftest.ansible_playbook: the tests read plain output.
os.environ["ANSIBLE_FORCE_COLOR"] = "0"

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
DEPLOY = ROOT / "playbooks" / "deploy.yml"
ROLLBACK = ROOT / "playbooks" / "rollback.yml"
APPS = ("compose_app-app1", "compose_app-app2")
EDGE_PORT = 9443
HOSTNAME = "quiz.aiquiz.lab"
LEDGER_DIR = "/var/lib/aiquiz/releases"
LEDGER = LEDGER_DIR + "/quiz.json"
# Short canary in tests; its logic is the same.
FAST = {"compose_app_canary_seconds": 6, "compose_app_canary_min_requests": 5}
WORKLOAD_FILE = ROOT / "inventories" / "lab" / "group_vars" / "app" / "workload.yml"


def get(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def sh(name, command):
    """stdout of a command on an instance, straight through its engine (fast enough to poll)."""
    return subprocess.run(["docker", "exec", name, "sh", "-c", command], capture_output=True, text=True,
                          timeout=60, check=True).stdout


def edge_get(path):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request("https://127.0.0.1:%d%s" % (EDGE_PORT, path), headers={"Host": HOSTNAME})
    with urllib.request.urlopen(req, timeout=5, context=ctx) as resp:
        return resp.status, resp.read().decode()


def served_releases(samples=20):
    return {json.loads(edge_get("/version")[1])["release"] for _sample in range(samples)}


def ledger(name, path=LEDGER):
    return json.loads(get(name).file(path).content_string)


def state_of(name, release):
    return {r["id"]: r["state"] for r in ledger(name)["releases"]}.get(release)


def recap(output):
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(\S+)\s+: ((?:\w+=\d+\s*)+)$", output, re.M)}


def deploy(release, **extra):
    return ansible_playbook(DEPLOY, dict(FAST, compose_app_release=release, **extra), timeout=900)


def services(images_of):
    """The sample workload's services with the images of release images_of (a new
    release id can then reuse images that exist in the scenario's registry)."""
    text = WORKLOAD_FILE.read_text().replace("{{ compose_app_release }}", images_of)
    return yaml.safe_load(text)["compose_app_services"]


def playbook_env(**extra):
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **extra)


def start_playbook(playbook, extra_vars, log, verbosity=0, env=None):
    """ansible-playbook in the background, its output into the file log; returns the Popen."""
    cmd = ["ansible-playbook", "-i", os.path.dirname(INVENTORY), str(playbook), "-e", json.dumps(extra_vars)]
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    handle = open(log, "w", encoding="utf-8")  # pylint: disable=consider-using-with
    # A session of its own: a test can kill the run as a crash would, controller side only.
    return subprocess.Popen(cmd, cwd=ROOT, env=env or playbook_env(), stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)


def under_load(action, rate=120):
    gen = LoadGenerator("127.0.0.1", EDGE_PORT, host=HOSTNAME, rate=rate, threads=6,
                        max_requests=rate * 600, max_seconds=600)
    with gen:
        gen.mark("baseline")
        time.sleep(3)
        gen.mark("action")
        result = action()
        gen.mark("after")
        time.sleep(2)
    return result, gen.summary()


def containers(name, **labels):
    """{id: (service, state, started at)} of the containers on an instance with these ops.aiquiz labels."""
    filters = " ".join("--filter label=ops.aiquiz.%s=%s" % item for item in sorted(labels.items()))
    ids = sh(name, "docker ps -aq --no-trunc %s" % filters).split()
    if not ids:
        return {}
    # A container removed between the two commands is left out (inspect still prints the others).
    out = sh(name, "docker inspect --format '{{json .}}' %s 2>/dev/null || true" % " ".join(ids))
    found = {}
    for line in out.splitlines():
        info = json.loads(line)
        found[info["Id"]] = (info["Config"]["Labels"].get("ops.aiquiz.service"), info["State"]["Status"],
                             info["State"]["StartedAt"])
    return found
