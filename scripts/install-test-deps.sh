#!/usr/bin/env bash
# Installs the system tools the test suite drives for real (DESIGN.md "Real peers"):
#   promtool      (Debian package prometheus)   - `promtool check metrics` on /metrics
#   redis-server  (Debian package redis-server) - the Redis-backed approval store
#   wrk           (Debian package wrk)          - second load generator in the bench smoke
#   chromium      (Debian package chromium)     - the approvals console, driven by playwright-core
#   python3 -m venv (Debian python3-venv)       - a venv for the Python MCP SDK (pip install mcp;
#                                                  test/support/python.mjs)
#   patchelf      (Debian package patchelf)     - the Node 24 run on glibc < 2.38 (scripts/node24.sh)
# Idempotent and quiet: when all are present it only runs a `command -v` check each.
# Without root or apt-get it explains and exits 0; the tests that need a tool then skip.
set -euo pipefail

declare -A wanted=([promtool]=prometheus [redis-server]=redis-server [wrk]=wrk [chromium]=chromium [patchelf]=patchelf)
missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
# Debian's python3 lacks venv/ensurepip until python3-venv is installed.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: missing ${missing[*]}; not root or no apt-get, so not installing." >&2
  echo "install-test-deps: tests that need them will skip (install: apt-get install ${missing[*]})." >&2
  exit 0
fi

# Packages only: keep the postinst scripts from starting prometheus/redis daemons on
# default ports (they would collide with the servers tests start themselves).
created_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { [ -n "$created_policy" ] && rm -f /usr/sbin/policy-rc.d; return 0; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "install-test-deps: apt-get failed installing ${missing[*]}" >&2
  # CI must run the real tools; a developer offline still gets the rest of the suite.
  [ "${CI:-}" = "true" ] && exit 1
  exit 0
fi
rm -f "$log"

for cmd in "${!wanted[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "install-test-deps: $cmd still missing after installing ${wanted[$cmd]}" >&2
    exit 1
  fi
done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "install-test-deps: python3 -m venv still unavailable after installing python3-venv" >&2
  exit 1
fi
