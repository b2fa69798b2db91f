#!/usr/bin/env bash
# Make bubblewrap available for the kubelet's process runtime (each container is a bwrap process
# with its own mount and PID namespaces): `bwrap` on PATH is used as is; otherwise install Debian's
# bubblewrap with apt-get when we are root; otherwise say what to do. Never fails the build: only
# the process runtime needs bwrap (the fake runtime and the control plane do not).
set -u
if command -v bwrap >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "kplane: bwrap not found; installing Debian's bubblewrap with apt-get" >&2
  if (apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
      (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1)); then
    command -v bwrap >/dev/null 2>&1 && exit 0
  fi
fi
echo "kplane: WARNING: bubblewrap (bwrap) is not installed: the process runtime cannot run containers." >&2
echo "kplane: WARNING: install it as root (apt-get install bubblewrap), or run kubelets with the fake runtime." >&2
exit 0
