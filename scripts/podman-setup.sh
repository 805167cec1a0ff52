#!/usr/bin/env bash
# A Docker-compatible container engine without a Docker daemon or a registry: podman, its API
# socket, and a Debian bookworm base image built from Debian's packages (once), for the
# container smoke tests (tests/deploy/test_containers.py and test_compose_stack.py).
# `make test` runs it; by hand:
#   eval "$(scripts/podman-setup.sh)"   # then: AISTACK_CONTAINER_TESTS=1 .venv/bin/python -m pytest tests/deploy
# Prints the environment the tests need; idempotent and quick after the first run (~1 min).
set -euo pipefail
state=${AISTACK_PODMAN_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/aistack-podman}
base=${AISTACK_CPU_BASE_IMAGE:-localhost/aistack-base:bookworm}
sudo=""
[[ $(id -u) == 0 ]] || sudo=sudo

if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null \
  || ! command -v curl >/dev/null; then
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    podman uidmap slirp4netns fuse-overlayfs runc debootstrap curl >&2
fi

mkdir -p "$state"
# crun fails on rlimits and on hybrid cgroup layouts; runc works.
cat >"$state/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF=$state/containers.conf
socket=$state/podman.sock

if ! curl -sf --unix-socket "$socket" http://d/_ping >/dev/null 2>&1; then
  rm -f "$socket"
  # Started in its state folder: conmon inherits the working directory, and the caller's
  # (a checkout, say) may be gone while the service still runs.
  (cd "$state" && exec nohup podman system service --time=0 "unix://$socket" \
    >"$state/service.log" 2>&1) &
  echo $! >"$state/service.pid"
  for _ in $(seq 100); do
    curl -sf --unix-socket "$socket" http://d/_ping >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

# Podman schedules health checks with systemd timers; with no systemd here they never run
# and every container stays "starting", so `depends_on: service_healthy` would wait forever.
# This loop stands in for the timers: it runs each container's check every 2 s.
ticker=$state/healthcheck-ticker.pid
if ! { [[ -f $ticker ]] && kill -0 "$(cat "$ticker")" 2>/dev/null; }; then
  (cd "$state" && exec nohup bash -c 'while sleep 2; do
      for id in $(podman ps -q --filter health=starting --filter health=healthy \
          --filter health=unhealthy); do
        podman healthcheck run "$id" >/dev/null 2>&1 || true
      done
    done' >/dev/null 2>&1) &
  echo $! >"$ticker"
fi

if ! podman image exists "$base"; then
  root=$(mktemp -d)
  # ca-certificates: builds fetch from the package registries over HTTPS.
  $sudo debootstrap --variant=minbase --include=ca-certificates bookworm "$root" >&2
  # The base trusts what this host trusts (a site's own CA, e.g. a TLS-inspecting proxy's),
  # and pip in builds uses that store rather than its bundled one.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    $sudo cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    $sudo chroot "$root" update-ca-certificates >&2
  fi
  $sudo tar -C "$root" -c . | podman import \
    --change "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt" - "$base" >&2
  $sudo rm -rf "$root"
fi

cat <<ENV
export CONTAINERS_CONF=$state/containers.conf
export DOCKER_HOST=unix://$socket
export AISTACK_CPU_BASE_IMAGE=$base
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_CONNECTION_MODE=docker_host
ENV
