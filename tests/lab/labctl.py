"""Lab control: base images, and the lab's systemd hosts as Docker containers.

Usage: python3 tests/lab/labctl.py {images|up|down|status} [--json]

Standard library only: it runs before the venv exists. Every failure ends
with one line on stderr and exit code 2, never a traceback.
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOPOLOGY = os.path.join(HERE, "topology.json")

# Bump when the way images are built changes; it is part of the cache key.
RECIPE_VERSION = "4"
MIRROR = os.environ.get("AIQUIZ_LAB_MIRROR", "http://deb.debian.org/debian")
# Boot and Ansible needs, then packages the host roles install everywhere,
# baked in so that each converge does not fetch them again (the roles still
# declare them). openssh-server stays out: its host keys must be per host.
BASE_PACKAGES = [
    "python3", "python3-apt", "systemd", "systemd-sysv", "dbus", "sudo",
    "iproute2", "procps", "ca-certificates", "gnupg", "curl", "less",
    "vim-tiny", "chrony", "unattended-upgrades", "nftables", "auditd",
]
SUITES = {"12": "bookworm", "13": "trixie"}
IMAGE_REPO = "aiquiz-lab/debian"
LABEL = "ops.aiquiz.lab"


class LabError(Exception):
    """A failure the operator can act on; printed as one line."""


def run(cmd, check=True, capture=True, **kwargs):
    try:
        proc = subprocess.run(cmd, check=False, text=True,
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.PIPE if capture else None, **kwargs)
    except FileNotFoundError as exc:
        raise LabError("%s is not installed (run `make setup`)" % cmd[0]) from exc
    if check and proc.returncode != 0:
        err = (proc.stderr or "").strip().splitlines()
        raise LabError("%s failed: %s" % (" ".join(cmd[:3]), err[-1] if err else "exit %d" % proc.returncode))
    return proc


def docker(*args, check=True):
    return run(["docker"] + list(args), check=check)


def require_engine():
    proc = run(["docker", "info", "--format", "{{json .ServerVersion}}"], check=False)
    if proc.returncode != 0:
        raise LabError("no usable Docker engine: `docker info` cannot reach the daemon "
                       "(run `make setup` to install and start it)")


def recipe_hash(version):
    recipe = {
        "recipe": RECIPE_VERSION,
        "suite": SUITES[version],
        "mirror": MIRROR,
        "packages": sorted(BASE_PACKAGES),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def image_exists(ref):
    return docker("image", "inspect", ref, check=False).returncode == 0


def build_image(version):
    """Build (or reuse) the Debian base image for one version; return its tag."""
    digest = recipe_hash(version)
    pinned = "%s:%s-%s" % (IMAGE_REPO, version, digest)
    alias = "%s:%s" % (IMAGE_REPO, version)
    if image_exists(pinned):
        docker("tag", pinned, alias)
        print("  debian %s: cached (%s)" % (version, pinned))
        return pinned
    started = time.monotonic()
    root = tempfile.mkdtemp(prefix="aiquiz-lab-%s-" % version, dir="/var/tmp")
    try:
        proc = run(["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
                    SUITES[version], root, MIRROR], check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:]
            raise LabError("debootstrap %s failed (is %s reachable?): %s"
                           % (SUITES[version], MIRROR, tail[0] if tail else "no output"))
        customise_rootfs(root)
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            ["docker", "import",
             "-c", 'CMD ["/lib/systemd/systemd"]',
             "-c", "ENV container=docker",
             "-c", "LABEL %s.recipe=%s" % (LABEL, digest),
             "-", pinned], stdin=tar.stdout, capture_output=True, text=True, check=False)
        tar.stdout.close()
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise LabError("docker import of debian %s failed: %s" % (version, imp.stderr.strip()))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    docker("tag", pinned, alias)
    print("  debian %s: built %s in %.0f s" % (version, pinned, time.monotonic() - started))
    return pinned


def customise_rootfs(root):
    """Make the tree boot cleanly as a container host."""
    # Units that have no use in a container and only slow the boot or fail.
    for unit in ("getty.target", "systemd-udevd.service", "systemd-udevd-kernel.socket",
                 "systemd-udevd-control.socket", "systemd-modules-load.service",
                 "sys-kernel-config.mount", "sys-kernel-debug.mount",
                 "systemd-remount-fs.service", "apt-daily.timer", "apt-daily-upgrade.timer"):
        link = os.path.join(root, "etc/systemd/system", unit)
        if not os.path.lexists(link):
            os.symlink("/dev/null", link)
    # /tmp is a fresh tmpfs in every container; Debian's boot-time purge of it
    # races with a first Ansible task still booting (its module vanishes).
    os.makedirs(os.path.join(root, "etc/tmpfiles.d"), exist_ok=True)
    with open(os.path.join(root, "etc/tmpfiles.d/tmp.conf"), "w", encoding="utf-8") as fh:
        fh.write("d /tmp 1777 root root -\n")
    with open(os.path.join(root, "etc/apt/apt.conf.d/90aiquiz-lab"), "w", encoding="utf-8") as fh:
        fh.write('APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n')
    # Package lists stay (roles refresh them by cache age); downloaded .debs go.
    archives = os.path.join(root, "var/cache/apt/archives")
    for name in os.listdir(archives):
        if name.endswith(".deb"):
            os.unlink(os.path.join(archives, name))
    with open(os.path.join(root, "etc/machine-id"), "w", encoding="utf-8"):
        pass


def load_topology():
    with open(TOPOLOGY, encoding="utf-8") as fh:
        return json.load(fh)


def container_name(topo, host):
    return "%s-%s" % (topo["prefix"], host["name"])


def lab_containers(topo):
    """The lab's containers as {Names, State, Labels, Ports}, from `docker inspect`."""
    ids = docker("ps", "-aq", "--filter", "label=%s.lab=%s" % (LABEL, topo["lab"])).stdout.split()
    if not ids:
        return []
    out = []
    for c in json.loads(docker("inspect", *ids).stdout):
        ports = []
        for port, binds in sorted((c["NetworkSettings"].get("Ports") or {}).items()):
            for b in binds or []:
                ports.append("%s:%s->%s" % (b["HostIp"], b["HostPort"], port))
        out.append({"Names": c["Name"].lstrip("/"), "State": c["State"]["Status"],
                    "Labels": c["Config"]["Labels"] or {}, "Ports": ", ".join(ports)})
    return out


def cmd_images(_args):
    require_engine()
    # debootstrap is mostly waiting on the mirror: build both at once.
    errors = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(SUITES)) as pool:
        futures = [pool.submit(build_image, v) for v in sorted(SUITES)]
        for fut in futures:
            try:
                fut.result()
            except LabError as exc:
                errors.append(str(exc))
    if errors:
        raise LabError("; ".join(errors))


def host_run_args(topo, host):
    name = container_name(topo, host)
    args = ["run", "-d", "--name", name, "--hostname", host["name"],
            "--network", topo["network"], "--network-alias", host["name"],
            "--restart", "unless-stopped", "--stop-signal", "SIGRTMIN+3",
            "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
            "--security-opt", "seccomp=unconfined",
            "--label", "%s.lab=%s" % (LABEL, topo["lab"]),
            "--label", "%s.host=%s" % (LABEL, host["name"]),
            "--label", "%s.groups=%s" % (LABEL, ",".join(host["groups"]))]
    for alias in host.get("aliases", []):
        args += ["--network-alias", alias]
    for cap in topo["capabilities"]:
        args += ["--cap-add", cap]
    for volume in host.get("volumes", []):
        args += ["-v", "%s-%s:%s" % (name, volume["name"], volume["path"])]
    for port in host.get("publish", []):
        args += ["-p", port]
    image = "%s:%s" % (IMAGE_REPO, host["debian"])
    # The spec label lets `up` recreate a host whose definition changed.
    spec = hashlib.sha256(json.dumps([args, image_id(image)]).encode()).hexdigest()[:12]
    return args + ["--label", "%s.spec=%s" % (LABEL, spec), image], spec


def image_id(ref):
    return docker("image", "inspect", "--format", "{{.Id}}", ref, check=False).stdout.strip()


def wait_running(name, deadline):
    state = ""
    while time.monotonic() < deadline:
        proc = docker("exec", name, "systemctl", "is-system-running", check=False)
        state = proc.stdout.strip()
        if state in ("running", "degraded"):
            return state
        time.sleep(0.5)
    raise LabError("%s did not boot: systemd state %r after 90 s" % (name, state or "unknown"))


def start_fresh_hosts(topo):
    """Fresh hosts of a throwaway topology (benchmarks, tests): replace any left
    over, start them on their own network, wait for the boot; return an
    inventory (dict) that reaches them with the Docker CLI connection, every
    production group present."""
    cmd_down(argparse.Namespace(keep_volumes=False), topo)
    docker("network", "create", "--label", "%s.lab=%s" % (LABEL, topo["lab"]), topo["network"])
    for host in topo["hosts"]:
        docker(*host_run_args(topo, host)[0])
    deadline = time.monotonic() + 90
    children = {group: {"hosts": {}} for group in ("edge", "app", "data", "monitoring")}
    for host in topo["hosts"]:
        wait_running(container_name(topo, host), deadline)
        for group in host["groups"]:
            children.setdefault(group, {"hosts": {}})["hosts"][host["name"]] = {
                "ansible_host": container_name(topo, host)}
    return {"all": {"vars": {"ansible_connection": "community.docker.docker",
                             "ansible_python_interpreter": "/usr/bin/python3",
                             # Containers cannot load audit rules.
                             "hardening_os_auditd_start": False},
                    "children": children}}


def cmd_up(_args):
    require_engine()
    topo = load_topology()
    for version in sorted({h["debian"] for h in topo["hosts"]}):
        if not image_exists("%s:%s" % (IMAGE_REPO, version)):
            raise LabError("image %s:%s is missing (run `make setup`)" % (IMAGE_REPO, version))
    if docker("network", "inspect", topo["network"], check=False).returncode != 0:
        docker("network", "create", "--label", "%s.lab=%s" % (LABEL, topo["lab"]), topo["network"])
    existing = {c["Names"]: c for c in lab_containers(topo)}
    started = []
    for host in topo["hosts"]:
        name = container_name(topo, host)
        current = existing.get(name)
        args, spec = host_run_args(topo, host)
        if current and current["Labels"].get("%s.spec" % LABEL) != spec:
            print("  %s: definition or image changed, recreating" % host["name"])
            docker("rm", "-f", name)
            current = None
        if current and current["State"] == "running":
            continue
        if current:
            docker("start", name)
        else:
            docker(*args)
        started.append(name)
    deadline = time.monotonic() + 90
    for host in topo["hosts"]:
        wait_running(container_name(topo, host), deadline)
    print("lab %s: %d hosts up (%d started)" % (topo["lab"], len(topo["hosts"]), len(started)))


def cmd_down(args, topo=None):
    require_engine()
    topo = topo or load_topology()
    names = [c["Names"] for c in lab_containers(topo)]
    if names:
        docker("rm", "-f", *names)
    if not args.keep_volumes:
        vols = docker("volume", "ls", "-q", "--filter", "name=%s-" % topo["prefix"]).stdout.split()
        if vols:
            docker("volume", "rm", "-f", *vols)
    docker("network", "rm", topo["network"], check=False)
    print("lab %s: %d hosts removed" % (topo["lab"], len(names)))


def cmd_status(args):
    require_engine()
    topo = load_topology()
    found = {c["Names"]: c for c in lab_containers(topo)}
    rows = []
    for host in topo["hosts"]:
        name = container_name(topo, host)
        cont = found.get(name)
        system = "-"
        if cont and cont["State"] == "running":
            system = docker("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
        rows.append({"host": host["name"], "container": name, "groups": host["groups"],
                     "debian": host["debian"], "state": cont["State"] if cont else "absent",
                     "systemd": system, "ports": cont["Ports"] if cont else ""})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        fmt = "%-6s %-20s %-9s %-10s %-6s %-18s %s"
        print(fmt % ("HOST", "CONTAINER", "STATE", "SYSTEMD", "DEBIAN", "GROUPS", "PORTS"))
        for r in rows:
            print(fmt % (r["host"], r["container"], r["state"], r["systemd"], r["debian"],
                         ",".join(r["groups"]), r["ports"]))
    if any(r["state"] != "running" for r in rows):
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="labctl")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("images", help="build the Debian 12 and 13 base images (cached)")
    sub.add_parser("up", help="start the lab hosts")
    down = sub.add_parser("down", help="remove the lab hosts, their network and volumes")
    down.add_argument("--keep-volumes", action="store_true")
    status = sub.add_parser("status", help="show the lab hosts")
    status.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    handler = {"images": cmd_images, "up": cmd_up, "down": cmd_down, "status": cmd_status}[args.command]
    try:
        return handler(args) or 0
    except LabError as exc:
        print("labctl %s: %s" % (args.command, exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("labctl %s: interrupted" % args.command, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
