"""Lab control: base images, the lab's systemd hosts as Docker containers,
and the sample workload's images in the lab registry.

Usage: python3 tests/lab/labctl.py {images|up|down|status|registry|workloads} [options]

Standard library only: it runs before the venv exists. Every failure ends
with one line on stderr and exit code 2, never a traceback.
"""

import argparse
import concurrent.futures
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOPOLOGY = os.path.join(HERE, "topology.json")
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKLOADS = os.path.join(ROOT, "tests", "workloads")
WORKLOAD_IMAGES = ("quiz-api", "quiz-web", "quiz-worker")
WORKLOAD_TAGS = ("1.0.0", "1.1.0", "1.2.0")
# Releases built to fail readiness (/readyz always 503): the rollback drill.
FAIL_READY_TAGS = ("1.2.0",)
WORKLOAD_NAMESPACE = "aiquiz"
DEFAULT_REGISTRY = "127.0.0.1:5000"

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
    # The backup role's storage layer (issue 13), on the data hosts and any host a drill rebuilds.
    "restic",
]
SUITES = {"12": "bookworm", "13": "trixie"}
IMAGE_REPO = "aiquiz-lab/debian"
# The workload's runtime (tests/workloads): Python 3 and the three client
# libraries on Debian 12, tini as PID 1, no systemd.
RUNTIME_RECIPE_VERSION = "1"
RUNTIME_VERSION = "12"
RUNTIME_PACKAGES = [
    "python3", "python3-psycopg2", "python3-redis", "python3-pika",
    "ca-certificates", "tini",
]
RUNTIME_REPO = "aiquiz-lab/runtime"
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


def docker(*args, check=True, **kwargs):
    return run(["docker"] + list(args), check=check, **kwargs)


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


def runtime_recipe_hash():
    recipe = {
        "recipe": RUNTIME_RECIPE_VERSION,
        "suite": SUITES[RUNTIME_VERSION],
        "mirror": MIRROR,
        "packages": sorted(RUNTIME_PACKAGES),
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


def build_runtime_image():
    """Build (or reuse) the workload runtime image aiquiz-lab/runtime:12."""
    digest = runtime_recipe_hash()
    pinned = "%s:%s-%s" % (RUNTIME_REPO, RUNTIME_VERSION, digest)
    alias = "%s:%s" % (RUNTIME_REPO, RUNTIME_VERSION)
    if image_exists(pinned):
        docker("tag", pinned, alias)
        print("  runtime %s: cached (%s)" % (RUNTIME_VERSION, pinned))
        return pinned
    started = time.monotonic()
    suite = SUITES[RUNTIME_VERSION]
    root = tempfile.mkdtemp(prefix="aiquiz-runtime-", dir="/var/tmp")
    try:
        proc = run(["debootstrap", "--variant=minbase", "--include=" + ",".join(RUNTIME_PACKAGES),
                    suite, root, MIRROR], check=False)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:]
            raise LabError("debootstrap %s (runtime) failed (is %s reachable?): %s"
                           % (suite, MIRROR, tail[0] if tail else "no output"))
        slim_rootfs(root)
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(
            ["docker", "import",
             "-c", 'ENTRYPOINT ["/usr/bin/tini", "--"]',
             "-c", 'CMD ["python3"]',
             "-c", "ENV LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
             "-c", "LABEL %s.recipe=%s" % (LABEL, digest),
             "-", pinned], stdin=tar.stdout, capture_output=True, text=True, check=False)
        tar.stdout.close()
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise LabError("docker import of the runtime image failed: %s" % imp.stderr.strip())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    docker("tag", pinned, alias)
    print("  runtime %s: built %s in %.0f s" % (RUNTIME_VERSION, pinned, time.monotonic() - started))
    return pinned


def slim_rootfs(root):
    """A runtime needs no documentation, translations, package lists or caches."""
    for rel in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
                "usr/share/lintian", "var/lib/apt/lists", "var/cache/apt", "var/cache/debconf",
                "var/log"):
        path = os.path.join(root, rel)
        if os.path.isdir(path):
            for name in os.listdir(path):
                full = os.path.join(path, name)
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    os.unlink(full)
    os.makedirs(os.path.join(root, "var/lib/apt/lists/partial"), exist_ok=True)
    os.makedirs(os.path.join(root, "var/cache/apt/archives/partial"), exist_ok=True)
    with open(os.path.join(root, "etc/machine-id"), "w", encoding="utf-8"):
        pass


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
    # debootstrap is mostly waiting on the mirror: build them all at once.
    errors = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(SUITES) + 1) as pool:
        futures = [pool.submit(build_image, v) for v in sorted(SUITES)]
        futures.append(pool.submit(build_runtime_image))
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
    ensure_ssh_key()
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
    provision_ssh(topo)
    write_known_hosts(topo)
    print("lab %s: %d hosts up (%d started), reached over SSH as deploy (%s)"
          % (topo["lab"], len(topo["hosts"]), len(started), SSH_KNOWN_HOSTS))


SSH_DIR = os.path.join(ROOT, ".cache", "lab-ssh")
SSH_KEY = os.path.join(SSH_DIR, "id_ed25519")
SSH_KNOWN_HOSTS = os.path.join(SSH_DIR, "known_hosts")


def ensure_ssh_key():
    """The lab's SSH key on the controller (once): `up` gives its public half to each host's deploy
    user, the lab inventory reaches the hosts with it (and base_users keeps it there)."""
    if not os.path.exists(SSH_KEY):
        os.makedirs(SSH_DIR, mode=0o700, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "aiquiz lab", "-f", SSH_KEY])
    return SSH_KEY


# What a cloud image's first boot (cloud-init) gives a production host: sshd
# with its own host keys, an admin user holding the operator's key, sudo.
# Run through the engine once per host; what the roles manage afterwards
# (sshd_config, the deploy user, its sudoers file) is theirs, so nothing here
# rewrites a file that exists.
PROVISION_SCRIPT = r"""
set -eu
export DEBIAN_FRONTEND=noninteractive
if [ ! -x /usr/sbin/sshd ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
fi
getent group sshusers >/dev/null || groupadd sshusers
id deploy >/dev/null 2>&1 || useradd --create-home --shell /bin/bash deploy
usermod -a -G sshusers deploy
install -d -m 0700 -o deploy -g deploy /home/deploy/.ssh
touch /home/deploy/.ssh/authorized_keys
grep -qxF "$LAB_KEY" /home/deploy/.ssh/authorized_keys || printf '%s\n' "$LAB_KEY" >> /home/deploy/.ssh/authorized_keys
chown deploy:deploy /home/deploy/.ssh/authorized_keys
chmod 0600 /home/deploy/.ssh/authorized_keys
if [ ! -e /etc/sudoers.d/60-aiquiz-deploy ]; then
    printf 'deploy ALL=(ALL:ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/60-aiquiz-deploy
    chmod 0440 /etc/sudoers.d/60-aiquiz-deploy
fi
systemctl enable --now ssh.service >/dev/null 2>&1
systemctl is-active --quiet ssh.service
"""


def platform_hosts(topo):
    return [h for h in topo["hosts"] if "lab_helpers" not in h["groups"]]


def provision_ssh(topo):
    """sshd, the deploy user and the lab key on every platform host, side by side."""
    with open(ensure_ssh_key() + ".pub", encoding="utf-8") as handle:
        key = handle.read().strip()

    def one(host):
        name = container_name(topo, host)
        proc = docker("exec", "-e", "LAB_KEY=" + key, name, "sh", "-c", PROVISION_SCRIPT, check=False)
        if proc.returncode != 0:
            return "%s: %s" % (host["name"], (proc.stderr or proc.stdout).strip()[-400:])
        return None

    hosts = platform_hosts(topo)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(len(hosts), 1)) as pool:
        errors = [e for e in pool.map(one, hosts) if e]
    if errors:
        raise LabError("could not give the hosts sshd and the deploy user: " + "; ".join(errors))


def write_known_hosts(topo):
    """A known_hosts file of every platform host's SSH host key, read through the
    Docker engine (a channel the lab trusts), so that SSH checks the keys strictly."""
    lines, missing = [], []
    for host in platform_hosts(topo):
        name = container_name(topo, host)
        key = docker("exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub", check=False)
        address = docker("inspect", "-f", "{{(index .NetworkSettings.Networks %s).IPAddress}}" % json.dumps(topo["network"]),
                         name, check=False).stdout.strip()
        if key.returncode != 0 or not address:
            missing.append(host["name"])
            continue
        keytype, blob = key.stdout.split()[:2]
        lines.append("%s %s %s" % (address, keytype, blob))
    os.makedirs(SSH_DIR, mode=0o700, exist_ok=True)
    tmp = SSH_KNOWN_HOSTS + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, SSH_KNOWN_HOSTS)
    if missing:
        raise LabError("no SSH host key on %s: run `labctl up` (it gives each host sshd)" % ", ".join(missing))
    return len(lines)


def cmd_ssh(_args):
    """The lab key and the known_hosts file again (after a host's sshd was rebuilt by hand)."""
    require_engine()
    topo = load_topology()
    provision_ssh(topo)
    count = write_known_hosts(topo)
    print("lab ssh: key %s, %d host keys in %s" % (SSH_KEY, count, SSH_KNOWN_HOSTS))


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
        fmt = "%-9s %-20s %-9s %-10s %-6s %-20s %s"
        print(fmt % ("HOST", "CONTAINER", "STATE", "SYSTEMD", "DEBIAN", "GROUPS", "PORTS"))
        for r in rows:
            print(fmt % (r["host"], r["container"], r["state"], r["systemd"], r["debian"],
                         ",".join(r["groups"]), r["ports"]))
    if any(r["state"] != "running" for r in rows):
        return 1
    return 0


# --------------------------------------------------------------------------
# The registry host and the workload images


# Lab only: plain HTTP and no authentication (Debian's default config asks for
# htpasswd credentials). Never a production registry setting.
REGISTRY_CONFIG = """\
# Written by tests/lab/labctl.py: the lab's registry (lab only: no TLS, no auth).
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""


def registry_ready(registry, timeout=2.0):
    """True when the registry at host:port answers its API (GET /v2/ is 200)."""
    try:
        with urllib.request.urlopen("http://%s/v2/" % registry, timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def registry_host(topo):
    for host in topo["hosts"]:
        if "registry" in host["groups"]:
            return host
    return None


def ensure_registry(container, registry, wait=60):
    """Debian's docker-registry installed, enabled and answering in container."""
    if registry_ready(registry):
        return "running"
    started = time.monotonic()
    script = (
        "set -e; export DEBIAN_FRONTEND=noninteractive; "
        "if ! dpkg-query -W -f='${Status}' docker-registry 2>/dev/null | grep -q 'ok installed'; then "
        "  apt-get install -y -q docker-registry >/tmp/aiquiz-registry-apt.log 2>&1 || "
        "  { apt-get update -q >>/tmp/aiquiz-registry-apt.log 2>&1 && "
        "    apt-get install -y -q docker-registry >>/tmp/aiquiz-registry-apt.log 2>&1; }; "
        "fi; "
        "if ! cmp -s /tmp/aiquiz-registry.yml /etc/docker/registry/config.yml; then "
        "  cp /tmp/aiquiz-registry.yml /etc/docker/registry/config.yml; "
        "  systemctl restart docker-registry; fi; "
        "systemctl enable --now docker-registry >/dev/null 2>&1; systemctl is-active docker-registry")
    docker("exec", "-i", container, "sh", "-c", "cat > /tmp/aiquiz-registry.yml", input=REGISTRY_CONFIG)
    proc = docker("exec", container, "sh", "-c", script, check=False)
    if proc.returncode != 0:
        raise LabError("docker-registry did not start in %s (see /tmp/aiquiz-registry-apt.log there): %s"
                       % (container, (proc.stdout + proc.stderr).strip().splitlines()[-1:] or "no output"))
    deadline = time.monotonic() + wait
    while not registry_ready(registry):
        if time.monotonic() > deadline:
            raise LabError("the registry in %s does not answer on http://%s/v2/ after %d s"
                           % (container, registry, wait))
        time.sleep(0.5)
    print("  registry %s: docker-registry started in %s in %.0f s"
          % (registry, container, time.monotonic() - started))
    return "started"


def workloads_hash(tag):
    """Hash of what goes into the workload images (the build context), the tag,
    and the runtime image they are built on."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(WORKLOADS):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.startswith("test_") or name.endswith((".pyc", ".md")):
                continue
            path = os.path.join(dirpath, name)
            h.update(os.path.relpath(path, WORKLOADS).encode() + b"\0")
            with open(path, "rb") as fh:
                h.update(fh.read() + b"\0")
    h.update(json.dumps({"tag": tag, "fail_ready": tag in FAIL_READY_TAGS,
                         "runtime": image_id("%s:%s" % (RUNTIME_REPO, RUNTIME_VERSION))}).encode())
    return h.hexdigest()[:12]


def build_workload(image, tag):
    """Build (or reuse) aiquiz/<image>:<tag>; return (local ref, built?)."""
    ref = "%s/%s:%s" % (WORKLOAD_NAMESPACE, image, tag)
    digest = workloads_hash(tag)
    label = "%s.workload" % LABEL
    current = docker("image", "inspect", "--format", "{{index .Config.Labels %s}}" % json.dumps(label), ref,
                     check=False)
    if current.returncode == 0 and current.stdout.strip() == digest:
        return ref, False
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    proc = run(["docker", "build", "-q", "-f", os.path.join(WORKLOADS, "Dockerfile"),
                "--build-arg", "SERVICE=%s" % image, "--build-arg", "RELEASE=%s" % tag,
                "--build-arg", "FAIL_READY=%d" % (tag in FAIL_READY_TAGS),
                "--label", "%s=%s" % (label, digest), "-t", ref, WORKLOADS], check=False, env=env)
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError("docker build of %s failed: %s" % (ref, err[-1] if err else "exit %d" % proc.returncode))
    return ref, True


def remote_digest(registry, repo, tag):
    """The digest the registry holds for repo:tag, None when it holds none."""
    req = urllib.request.Request(
        "http://%s/v2/%s/manifests/%s" % (registry, repo, tag), method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.headers.get("Docker-Content-Digest")
    except (OSError, ValueError):
        return None


def local_digest(ref, registry_repo):
    digests = json.loads(docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout or "[]")
    for item in digests or []:
        name, _sep, digest = item.partition("@")
        if name == registry_repo:
            return digest
    return None


def push_workload(ref, registry, image, tag):
    """Tag ref as <registry>/aiquiz/<image>:<tag> and push it unless the
    registry already holds that exact image; return (digest, pushed?)."""
    repo = "%s/%s" % (WORKLOAD_NAMESPACE, image)
    target = "%s/%s:%s" % (registry, repo, tag)
    docker("tag", ref, target)
    have = local_digest(ref, "%s/%s" % (registry, repo))
    if have and remote_digest(registry, repo, tag) == have:
        return have, False
    proc = docker("push", "-q", target, check=False)
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError("docker push %s failed: %s" % (target, err[-1] if err else "exit %d" % proc.returncode))
    digest = local_digest(ref, "%s/%s" % (registry, repo))
    if not digest:
        raise LabError("docker push %s left no digest" % target)
    return digest, True


def cmd_registry(args):
    require_engine()
    container = args.container
    if not container:
        topo = load_topology()
        host = registry_host(topo)
        if host is None:
            raise LabError("no host in the registry group in %s" % TOPOLOGY)
        container = container_name(topo, host)
    print("registry %s: %s" % (args.registry, ensure_registry(container, args.registry)))


def cmd_workloads(args):
    """Build the workload images for each tag, push them, print {image: {tag: digest}}."""
    require_engine()
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    started = time.monotonic()
    with contextlib.redirect_stdout(sys.stderr):  # stdout: the JSON document only
        build_runtime_image()
        container = args.registry_container
        if container is None and args.registry == DEFAULT_REGISTRY:
            topo = load_topology()
            host = registry_host(topo)
            container = container_name(topo, host) if host else None
        if container and container != "none":
            ensure_registry(container, args.registry)
        elif not registry_ready(args.registry):
            raise LabError("no registry answers on http://%s/v2/" % args.registry)
        jobs = [(image, tag) for tag in tags for image in WORKLOAD_IMAGES]
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            built = dict(zip(jobs, pool.map(lambda job: build_workload(*job), jobs)))
        n_built = sum(1 for _ref, fresh in built.values() if fresh)
        print("  workloads: %d images built, %d cached in %.1f s"
              % (n_built, len(jobs) - n_built, time.monotonic() - t0))
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            pushed = dict(zip(jobs, pool.map(
                lambda job: push_workload(built[job][0], args.registry, *job), jobs)))
        n_pushed = sum(1 for _d, fresh in pushed.values() if fresh)
        print("  workloads: %d pushed to %s, %d already there in %.1f s (total %.1f s)"
              % (n_pushed, args.registry, len(jobs) - n_pushed, time.monotonic() - t0,
                 time.monotonic() - started))
    result = {image: {tag: pushed[(image, tag)][0] for tag in tags} for image in WORKLOAD_IMAGES}
    out_dir = os.path.join(ROOT, "tests", "output")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "workloads.json"), "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2, sort_keys=True)
        fh.write("\n")
    print(json.dumps(result, indent=2, sort_keys=True))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="labctl")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("images", help="build the Debian 12 and 13 base images and the workload runtime (cached)")
    sub.add_parser("up", help="start the lab hosts")
    down = sub.add_parser("down", help="remove the lab hosts, their network and volumes")
    down.add_argument("--keep-volumes", action="store_true")
    sub.add_parser("ssh", help="give the hosts sshd and the deploy user again, rewrite known_hosts (`up` does both)")
    status = sub.add_parser("status", help="show the lab hosts")
    status.add_argument("--json", action="store_true")
    registry = sub.add_parser("registry", help="install and start docker-registry on the lab's registry host")
    registry.add_argument("--registry", default=DEFAULT_REGISTRY, help="address it answers on (host:port)")
    registry.add_argument("--container", help="container to set up (default: the lab host in the registry group)")
    workloads = sub.add_parser("workloads", help="build the sample workload's images and push them")
    workloads.add_argument("--registry", default=DEFAULT_REGISTRY,
                           help="push address host:port (default %(default)s, the lab's registry1)")
    workloads.add_argument("--tags", default=",".join(WORKLOAD_TAGS), help="comma-separated (default %(default)s)")
    workloads.add_argument("--registry-container",
                           help="container to install docker-registry in first ('none': the registry "
                                "is already running; default: registry1 when --registry is %s)" % DEFAULT_REGISTRY)
    args = parser.parse_args(argv)
    handler = {"images": cmd_images, "up": cmd_up, "down": cmd_down, "status": cmd_status, "ssh": cmd_ssh,
               "registry": cmd_registry, "workloads": cmd_workloads}[args.command]
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
