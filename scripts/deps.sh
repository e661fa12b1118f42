#!/usr/bin/env bash
# Install everything hbvip's demo, tests and benchmarks need on a fresh Debian 12 (run as root).
# Idempotent: a second run only checks. Services that packages would start (heartbeat, keepalived,
# sshd) are kept from starting on the real machine: the lab starts its own copies inside namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(iproute2 nftables openssh-server openssh-client tcpdump iputils-arping iputils-ping
          python3 python3-venv python3-dev python3-apt gcc make git heartbeat keepalived procps util-linux
          curl faketime systemd-container)

if [ "$(id -u)" -ne 0 ]; then
  echo "hbvip: the lab needs root (network namespaces, bind mounts). Run as root." >&2
  exit 1
fi

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "hbvip: installing ${missing[*]}"
  # policy-rc.d 101 = "do not start services from maintainer scripts"; removed again afterwards
  # only if we created it.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv "$VENV"
fi
stamp="$VENV/.deps-$(cat requirements-dev.txt agent/pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  "$VENV/bin/pip" install -q --upgrade pip wheel
  "$VENV/bin/pip" install -q -r requirements-dev.txt
  "$VENV/bin/pip" install -q -e agent
  rm -f "$VENV"/.deps-*; touch "$stamp"
fi

# Byte-compile the agent once: lab hosts start `python -m hbvip.cli` hundreds of times in a test run, and
# where PYTHONDONTWRITEBYTECODE is set (CI) each start would compile every module again (~100 ms each).
# A stale .pyc is never used: Python compares it with the source's mtime.
"$VENV/bin/python" -m compileall -q agent/src lab >/dev/null
