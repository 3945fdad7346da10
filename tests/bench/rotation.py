"""Benchmark: new TLS connections through a forced certificate rotation.

python3 tests/bench/rotation.py [--port 9444] [--name edge] [--inventory DIR]
                                [--min-handshakes 5000] [--max-handshakes 40000]
                                [--max-seconds 600] [--workers 4] [--rate 200]

Runs against an edge whose 443 is published on 127.0.0.1 (Molecule's tls
scenario, `molecule converge -s tls`, publishes it on 127.0.0.1:9444; the
lab's edge1 on 127.0.0.1:8443). While playbooks/rotate-certs.yml rotates the
certificate `--name` with rotate_certs_force, worker threads open NEW TLS
connections to the port, each a full handshake (no session reuse), and
count the ones that fail, at most --rate handshakes a second in all (the
playbook needs the CPU too). The load starts before the rotation and goes on
until the rotation has ended and at least --min-handshakes were made,
bounded by --max-handshakes and --max-seconds; loopback only.

Prints one JSON document: handshakes, failures (and the first errors),
rotation_seconds, the rotation's exit code, the served serial before and
after, and the handshakes per serial. Exit code 0 when the rotation
succeeded, the serial changed and no handshake failed.
"""

import argparse
import collections
import glob
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

from cryptography import x509

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_inventory():
    """The inventory Molecule wrote for the tls scenario, if there is one."""
    found = sorted(glob.glob(os.path.expanduser("~/.ansible/tmp/molecule.*.tls/inventory")))
    return found[0] if found else os.path.join(ROOT, "inventories", "lab")


def handshake(host, port, server_name, timeout=5.0):
    """One new TCP connection and a full TLS handshake; the served certificate's serial (hex)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    return "%x" % x509.load_der_x509_certificate(der).serial_number


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9444)
    parser.add_argument("--server-name", default="quiz.tls.test")
    parser.add_argument("--name", default="edge", help="certificate to rotate")
    parser.add_argument("--inventory", default=None)
    parser.add_argument("--limit", default=None, help="ansible --limit for the rotation")
    parser.add_argument("--min-handshakes", type=int, default=5000)
    parser.add_argument("--max-handshakes", type=int, default=40000)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=200.0, help="handshakes per second, all workers")
    args = parser.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        raise SystemExit("--host must be a loopback address")
    inventory = args.inventory or default_inventory()

    serial_before = handshake(args.host, args.port, args.server_name)

    lock = threading.Lock()
    stop = threading.Event()
    counts = {"handshakes": 0, "failures": 0}
    errors = []
    serials = collections.Counter()
    deadline = time.monotonic() + args.max_seconds
    pace = {"next": time.monotonic()}

    def worker():
        while not stop.is_set() and time.monotonic() < deadline:
            with lock:
                if counts["handshakes"] >= args.max_handshakes:
                    return
                counts["handshakes"] += 1
                slot = pace["next"] = max(pace["next"] + 1.0 / args.rate, time.monotonic() - 1.0)
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                serial = handshake(args.host, args.port, args.server_name)
                with lock:
                    serials[serial] += 1
            except (OSError, ssl.SSLError) as exc:
                with lock:
                    counts["failures"] += 1
                    if len(errors) < 10:
                        errors.append("%s: %s" % (type(exc).__name__, exc))

    threads = [threading.Thread(target=worker, daemon=True) for _index in range(args.workers)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # load before the rotation starts

    cmd = ["ansible-playbook", "-i", inventory, os.path.join(ROOT, "playbooks", "rotate-certs.yml"),
           "-e", json.dumps({"rotate_certs_names": [args.name], "rotate_certs_force": True})]
    if args.limit:
        cmd += ["--limit", args.limit]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = os.path.join(ROOT, ".venv", "bin") + os.pathsep + env.get("PATH", "")
    if "/molecule." in inventory:
        # The scenario's group variables find their files through these.
        env.setdefault("MOLECULE_EPHEMERAL_DIRECTORY", os.path.dirname(os.path.abspath(inventory)))
        env.setdefault("MOLECULE_SCENARIO_DIRECTORY", os.path.join(ROOT, "molecule", "tls"))
    rot_start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.max_seconds,
                          check=False)
    rotation_seconds = time.monotonic() - rot_start

    # Keep the load on after the rotation (the old workers finish) until the
    # minimum count is reached, within the bounds.
    tail_end = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        with lock:
            done = counts["handshakes"] >= args.max_handshakes or (
                counts["handshakes"] >= args.min_handshakes and time.monotonic() >= tail_end)
        if done:
            break
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    elapsed = time.monotonic() - start

    serial_after = handshake(args.host, args.port, args.server_name)
    result = {
        "target": "%s:%d (SNI %s)" % (args.host, args.port, args.server_name),
        "certificate": args.name,
        "handshakes": counts["handshakes"],
        "failures": counts["failures"],
        "errors": errors,
        "handshakes_per_second": round(counts["handshakes"] / elapsed, 1),
        "load_seconds": round(elapsed, 2),
        "rotation_seconds": round(rotation_seconds, 2),
        "rotation_rc": proc.returncode,
        "serial_before": serial_before,
        "serial_after": serial_after,
        "handshakes_per_serial": dict(serials),
        "workers": args.workers,
        "rate_limit": args.rate,
    }
    if proc.returncode != 0:
        result["rotation_output_tail"] = (proc.stdout + proc.stderr)[-2000:]
    print(json.dumps(result, indent=2))
    ok = proc.returncode == 0 and serial_after != serial_before and counts["failures"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
