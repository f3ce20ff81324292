#!/usr/bin/env bash
# Runs the pinned osls (the open-source Serverless Framework v3 line, see
# package.json) from node_modules, installing it from package-lock.json first
# when node_modules lacks it. osls sends no telemetry and checks for no
# updates, and serverless.yml reads only ${env:}, ${opt:}, ${param:} and
# ${self:} variables, so `osls package` works offline without AWS credentials.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/osls ]; then
  echo "osls: node_modules has no osls; running npm ci to install the pinned version" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
exec node_modules/.bin/osls "$@"
