#!/usr/bin/env bash
# Makes sure the tracker's tests can run: the npm packages of tracker/ (npm ci,
# from the committed package-lock.json) and Debian's Chromium for the browser
# tests (apt-get, when running as root). Prints one line for each.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -d node_modules/playwright-core ] && [ -d node_modules/pg ]; then
  echo "tracker: npm packages present"
else
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "tracker: installed the npm packages (npm ci)"
fi

chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ -x "$chromium" ]; then
  echo "tracker: chromium present at $chromium"
elif [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  echo "tracker: installed Debian's chromium package"
else
  echo "tracker: $chromium is missing; install Debian's chromium package (as root: apt-get install chromium)" >&2
  exit 1
fi
