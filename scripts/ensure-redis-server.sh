#!/usr/bin/env bash
# Make sure a redis-server binary is on PATH (the tests start their own on free ports).
# Installs Debian's redis-server package when missing and we are root; otherwise explains.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server not found: installing Debian's redis-server package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # The package starts a system service; the tests never use it.
  (service redis-server stop || true) >/dev/null 2>&1
  exit 0
fi
echo "redis-server is required by the tests: install it (e.g. sudo apt-get install redis-server)" >&2
exit 1
