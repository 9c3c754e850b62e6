#!/usr/bin/env bash
# Make sure the programs the tests run are on PATH: redis-server (the tests start their own
# on free ports), nginx (the compose topology's load balancer, run on loopback) and chromium
# (the dashboard's browser tests drive it with Playwright; `playwright install` needs the internet).
# Installs Debian's packages for missing ones when we are root; otherwise explains.
set -euo pipefail
declare -A package_of=([redis-server]=redis-server [nginx]=nginx-light [chromium]=chromium)
missing=()
for program in "${!package_of[@]}"; do
  command -v "$program" >/dev/null 2>&1 || [ -x "/usr/sbin/$program" ] || missing+=("${package_of[$program]}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages the tests need: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start system services; the tests never use them.
  for service in redis-server nginx; do (service "$service" stop || true) >/dev/null 2>&1; done
  exit 0
fi
echo "the tests need: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
exit 1
