#!/usr/bin/env bash
# Checks what `make test` and `make dev` need, and says how to get anything
# missing. Exit 1 with a message, never a stack trace.
set -u
need_node=${NEED_NODE:-1}
fail=0
say() { printf '%s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  say "missing: Go 1.26+ (https://go.dev/doc/install), then re-run."
  fail=1
fi
if ! command -v python3 >/dev/null 2>&1; then
  say "missing: python3, needed for the local DynamoDB engine (moto). Install Python 3, then: pip install 'moto[server]'"
  fail=1
elif ! python3 -c 'import moto.moto_server.werkzeug_app, werkzeug' >/dev/null 2>&1; then
  say "missing: moto with its server extras (the local DynamoDB engine). Install it with: pip install 'moto[server]'"
  fail=1
fi
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
exit $fail
