#!/usr/bin/env bash
# Makes sure dashboard/node_modules holds the pinned uPlot (npm ci from the
# committed package-lock.json), so that the test that rebuilds the committed
# bundle from its sources can run. Prints one line.
set -euo pipefail
cd "$(dirname "$0")/../dashboard"
if [ -d node_modules/uplot ]; then
  echo "dashboard: npm packages present"
else
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "dashboard: installed the npm packages (npm ci)"
fi
