"""Benchmark: go-live.yml on a growing fleet (the lab plus app hosts), over SSH.

python3 tests/bench/fleet.py [--sizes 5,15,30] [--keep]

Needs the lab after a go-live (`make go-live`). For each size, in ascending
order, adds app hosts to the lab (app3, app4, ...; Debian 13 with the inner
engine's storage on a volume, like app1 and app2, provisioned by labctl as
every lab host is), runs go-live once to converge
the new hosts (the "grow" run) and once more idempotently (must end
changed=0). Each run records its wall time, the peak memory of the
controller's ansible processes (the sum of their RSS, sampled every 0.2 s),
and how busy the machine's CPUs were (from /proc/stat), which tells whether
the run waited on the CPU, on the hosts or on its own serial steps. Then the
added hosts are removed and go-live runs once more so that the edge and the
firewalls forget them (--keep leaves them). Prints one JSON document; it
asserts nothing.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lab"))
import labctl  # noqa: E402  pylint: disable=wrong-import-position

BASE_HOSTS = 5  # edge1, app1, app2, data1, mon1


def cpu_times():
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields), idle


def tree_rss_mib(root_pid):
    """Sum of the RSS of root_pid and its descendants, in MiB."""
    children, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="ascii", errors="replace") as handle:
                stat = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(stat[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / 1048576


def recap(output):
    hosts = {}
    for m in re.finditer(r"^(\S+)\s+: ((?:\w+=\d+\s*)+)$", output, re.M):
        hosts[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return hosts


def golive():
    env = dict(os.environ, PATH=os.path.join(ROOT, ".venv", "bin") + os.pathsep + os.environ["PATH"],
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               AIQUIZ_AUDIT_SUMMARY="false")
    total0, idle0 = cpu_times()
    started = time.monotonic()
    proc = subprocess.Popen(["ansible-playbook", "-i", "inventories/lab", "playbooks/go-live.yml"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0.0]
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            peak[0] = max(peak[0], tree_rss_mib(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _err = proc.communicate(timeout=7200)
    done.set()
    sampler.join()
    seconds = round(time.monotonic() - started, 1)
    total1, idle1 = cpu_times()
    hosts = recap(output)
    if proc.returncode != 0 or not hosts:
        raise SystemExit("go-live failed (exit %s):\n%s" % (proc.returncode, output[-4000:]))
    busy = 1 - (idle1 - idle0) / max(total1 - total0, 1)
    return {"seconds": seconds, "hosts": len(hosts), "changed": sum(h["changed"] for h in hosts.values()),
            "controller_peak_rss_mib": round(peak[0], 1), "cpu_busy": round(busy, 3),
            "cpus": os.cpu_count()}


def app_host(number):
    """An app host like the lab's own (topology.json): Debian 13 (Compose v2 from Debian), and the inner
    engine's storage on a volume (overlay2 cannot stack on the container's own overlay)."""
    return {"name": "app%d" % number, "debian": "13", "groups": ["app"],
            "volumes": [{"name": "docker", "path": "/var/lib/docker"}]}


def grow(topo, size):
    """Start the app hosts that bring the lab to `size` platform hosts; return the topology."""
    wanted = [app_host(n) for n in range(3, 3 + size - BASE_HOSTS)]
    names = {h["name"] for h in topo["hosts"]}
    added = [h for h in wanted if h["name"] not in names]
    for host in added:
        labctl.docker(*labctl.host_run_args(topo, host)[0])
    topo = dict(topo, hosts=topo["hosts"] + added)
    deadline = time.monotonic() + 300
    for host in added:
        labctl.wait_running(labctl.container_name(topo, host), deadline)
    labctl.provision_ssh(topo)
    labctl.write_known_hosts(topo)
    return topo


def shrink(topo):
    base = labctl.load_topology()
    extra = [labctl.container_name(topo, h) for h in topo["hosts"] if h not in base["hosts"]]
    if extra:
        labctl.docker("rm", "-f", *extra)
    labctl.write_known_hosts(base)
    return base


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5,15,30", help="platform host counts, ascending (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="leave the added app hosts running")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if sizes[0] < BASE_HOSTS:
        raise SystemExit("fleet: the smallest size is the lab's %d hosts" % BASE_HOSTS)
    topo = labctl.load_topology()
    figures = {"sizes": {}, "forks": None}
    cfg = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-config"), "dump", "--only-changed"],
                         cwd=ROOT, env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")),
                         capture_output=True, text=True, check=False).stdout
    forks = re.search(r"^DEFAULT_FORKS.*= (\d+)", cfg, re.M)
    figures["forks"] = int(forks.group(1)) if forks else 5
    try:
        for size in sizes:
            started = time.monotonic()
            topo = grow(topo, size)
            entry = {"hosts_started_s": round(time.monotonic() - started, 1)}
            entry["grow_run"] = golive()
            entry["idempotent_run"] = golive()
            figures["sizes"][str(size)] = entry
            print("fleet: %d hosts: idempotent %.1f s" % (size, entry["idempotent_run"]["seconds"]), file=sys.stderr)
    finally:
        if not args.keep:
            topo = shrink(topo)
            figures["shrink_run"] = golive()
    runs = {int(k): v["idempotent_run"]["seconds"] for k, v in figures["sizes"].items()}
    if len(runs) > 1:
        small, large = min(runs), max(runs)
        figures["idempotent_ratio_%d_to_%d" % (large, small)] = round(runs[large] / runs[small], 2)
        figures["aim"] = "%d hosts in under twice the time of %d" % (large, small)
    print(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
