#!/usr/bin/env bash
# Checks what `make test` and `make dev` need, and says how to get anything
# missing. Exit 1 with a message, never a stack trace.
#
# moto (the local DynamoDB engine) is looked for in, in this order: the
# interpreter $PYTHON names, the project's virtual environment .dev/venv,
# python3 on PATH. When none has it, the script sets it up itself in
# .dev/venv (pinned version, from $PIP_INDEX_URL or PyPI) if the index is
# reachable; otherwise it stops with the exact commands to run. pip cannot
# install into Debian's or Ubuntu's system Python (PEP 668,
# externally-managed-environment), which is why it is a venv.
set -u
need_node=${NEED_NODE:-1}
moto_version=5.2.1
venv=.dev/venv
index=${PIP_INDEX_URL:-https://pypi.org/simple}
fail=0
say() { printf '%s\n' "$*" >&2; }
has_moto() { "$1" -c 'import moto.moto_server.werkzeug_app, werkzeug' >/dev/null 2>&1; }

# index_reachable PY: can PY reach the package index (5 s at most)?
index_reachable() {
  IDX="$index" "$1" -c '
import os, sys, urllib.request
try:
    urllib.request.urlopen(os.environ["IDX"].rstrip("/") + "/moto/", timeout=5).read(1)
except Exception as exc:
    sys.stderr.write("%s\n" % exc)
    sys.exit(1)
' >/dev/null 2>&1
}

manual_steps() {
  say "  To set it up by hand (any machine that reaches a Python package index):"
  say "    python3 -m venv $venv && $venv/bin/pip install 'moto[server]==$moto_version'"
  say "  (Debian/Ubuntu: apt-get install python3-venv first if venv is missing.)"
  say "  Or point PYTHON at an interpreter that has moto: PYTHON=/path/to/python make dev"
}

# setup_moto BASE: create .dev/venv with BASE and install the pinned moto.
setup_moto() {
  say "moto is not installed: setting up moto[server]==$moto_version in $venv (once) ..."
  if ! "$1" -m venv "$venv" >/dev/null 2>&1; then
    say "could not create $venv with $1 -m venv (Debian/Ubuntu: apt-get install python3-venv)."
    manual_steps
    return 1
  fi
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --index-url "$index" "moto[server]==$moto_version" >&2; then
    say "pip could not install moto[server]==$moto_version into $venv (see above)."
    manual_steps
    return 1
  fi
  if ! has_moto "$venv/bin/python"; then
    say "moto was installed into $venv but does not import."
    manual_steps
    return 1
  fi
  say "moto $moto_version is set up in $venv; make dev and make test use it."
}

check_moto() {
  if [ -n "${PYTHON:-}" ]; then
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
      say "missing: PYTHON=$PYTHON is not an executable."
      return 1
    fi
    has_moto "$PYTHON" && return 0
    say "missing: moto in PYTHON=$PYTHON. Install it there ($PYTHON -m pip install 'moto[server]==$moto_version'), or unset PYTHON and let this script set up $venv."
    return 1
  fi
  if [ -x "$venv/bin/python" ] && has_moto "$venv/bin/python"; then
    return 0
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    say "missing: python3, needed for the local DynamoDB engine (moto). Install Python 3 (Debian/Ubuntu: apt-get install python3 python3-venv), then re-run."
    return 1
  fi
  has_moto python3 && return 0
  if index_reachable python3; then
    setup_moto python3
    return
  fi
  say "missing: moto with its server extras (the local DynamoDB engine), and the package index ($index) is not reachable from here."
  manual_steps
  return 1
}

if ! command -v go >/dev/null 2>&1; then
  say "missing: Go 1.26+ (https://go.dev/doc/install), then re-run."
  fail=1
fi
check_moto || fail=1
if [ "$need_node" = 1 ]; then
  if ! command -v npm >/dev/null 2>&1; then
    say "missing: Node.js and npm, needed for the second test engine (dynalite). Install Node.js 20+ (https://nodejs.org) or: apt-get install nodejs npm"
    fail=1
  elif [ ! -x local/node_modules/.bin/dynalite ]; then
    say "installing dynalite (npm ci --prefix local) ..."
    if ! npm ci --prefix local --no-audit --no-fund >/dev/null 2>&1; then
      say "could not install dynalite: run 'npm ci --prefix local' to see why (it needs the npm registry)."
      fail=1
    fi
  fi
fi
# Headless Chromium for the storefront's browser tests (local/e2e
# TestBrowser*), make test only. Outside CI they are skipped without it; CI
# (CI=true) must run them.
if [ "$need_node" = 1 ] && [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    say "missing: chromium, needed for the browser tests under CI=true: apt-get update && apt-get install -y chromium (.ci/run does it), or CHROMIUM=/path/to/chromium."
    fail=1
  else
    say "NOTE: chromium not found: the browser tests (local/e2e TestBrowser*) will be SKIPPED. Get it with: sudo apt-get update && sudo apt-get install -y chromium (Debian/Ubuntu), or set CHROMIUM=/path/to/chromium."
  fi
fi
exit $fail
