#!/usr/bin/env bash
# make setup: everything the lab and the tests need, idempotent.
# Each step prints its duration; any failure ends with one line.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 2
# restic: the backup host script's unit tests run the real binary against repositories in temporary directories.
APT_PACKAGES=(docker.io debootstrap git make python3-venv ca-certificates shellcheck openssh-client sshpass restic prometheus prometheus-alertmanager)
APT_PACKAGES+=(mtail)  # the unit test of the exporters role's mtail program (mtail --one_shot)
APT_PACKAGES+=(chromium)  # the go-live report test opens the report in headless Chromium
MIN_FREE_MB=${AIQUIZ_MIN_FREE_MB:-8192}
DOCKER_LOG=${AIQUIZ_DOCKER_LOG:-/var/log/aiquiz-dockerd.log}

die() { printf 'setup: %s\n' "$*" >&2; exit 2; }

step() {
  local name=$1; shift
  local t0 ms
  t0=$(date +%s%N)
  "$@" || exit $?
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf 'setup: %-9s %4d.%d s\n' "$name" $((ms / 1000)) $((ms % 1000 / 100))
}

check_host() {
  [ "$(id -u)" = 0 ] || die "must run as root (it installs packages and runs the Docker engine)"
  local free
  free=$(df -Pm "$root" | awk 'NR==2 {print $4}')
  [ "${free:-0}" -ge "$MIN_FREE_MB" ] || die "only ${free} MiB free on $(df -P "$root" | awk 'NR==2 {print $6}'), need ${MIN_FREE_MB} MiB"
  command -v python3 >/dev/null || die "python3 is missing; install Python 3.11 or newer"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "python3 is $(python3 -V 2>&1 | cut -d' ' -f2); ansible-core 2.19 needs 3.11 or newer"
  # Every systemd test host holds inotify instances of the shared kernel; at
  # the default 128, hosts beyond about a dozen exit at random (code 255).
  local inotify
  inotify=$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 0)
  if [ "$inotify" -lt 1024 ]; then
    sysctl -q -w fs.inotify.max_user_instances=1024 >/dev/null \
      || echo "setup: could not raise fs.inotify.max_user_instances (${inotify}); many test hosts at once may fail" >&2
  fi
}

install_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/tmp/aiquiz-apt.log 2>&1 \
    || die "apt-get update failed, is the Debian mirror reachable? (see /tmp/aiquiz-apt.log)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/aiquiz-apt.log 2>&1 \
    || die "apt-get install ${missing[*]} failed (see /tmp/aiquiz-apt.log)"
}

start_docker() {
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || die "dockerd is not installed (docker.io)"
  # No systemd on the CI controller: run the daemon in the background.
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker || die "systemctl start docker failed"
  else
    # In a session of its own: the engine must outlive the shell (or CI
    # step) that started it.
    setsid -f dockerd >"$DOCKER_LOG" 2>&1 </dev/null
  fi
  local _attempt
  for _attempt in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "the Docker engine did not start within 30 s (see $DOCKER_LOG)"
}

make_venv() {
  local stamp=.venv/.requirements.sha256 want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  [ -x .venv/bin/ansible-playbook ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  [ -d .venv ] || python3 -m venv .venv || die "python3 -m venv failed (install python3-venv)"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt >/tmp/aiquiz-pip.log 2>&1 \
    || die "pip install -r requirements.txt failed, is PyPI reachable? (see /tmp/aiquiz-pip.log)"
  echo "$want" >"$stamp"
}

# checkov (the k8s_app render test's policy scanner) pins packages the
# project's venv also holds: a venv of its own, made once.
CHECKOV_VERSION=3.3.30
make_checkov_venv() {
  [ -x .cache/checkov-venv/bin/checkov ] && return 0
  { mkdir -p .cache && python3 -m venv .cache/checkov-venv; } || die "python3 -m venv .cache/checkov-venv failed"
  .cache/checkov-venv/bin/pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION" >/tmp/aiquiz-checkov-pip.log 2>&1 \
    || die "pip install checkov failed, is PyPI reachable? (see /tmp/aiquiz-checkov-pip.log)"
}

link_collection() {
  # Playbooks resolve aiquiz.ops.* from this working tree, never from a copy.
  mkdir -p collections/ansible_collections/aiquiz
  ln -sfn ../../.. collections/ansible_collections/aiquiz/ops
}

build_images() {
  python3 tests/lab/labctl.py images || exit 2
}

total0=$(date +%s)
step host     check_host
step packages install_packages
step docker   start_docker
step venv     make_venv
step checkov  make_checkov_venv
step link     link_collection
step images   build_images
printf 'setup: done in %d s\n' "$(( $(date +%s) - total0 ))"
