#!/usr/bin/env bash
# Makes sure the pg_cron extension is installed for the machine's newest
# PostgreSQL (Debian's postgresql-N-cron package), installing it with apt-get
# when running as root. Prints one line. Loading it (shared_preload_libraries)
# is the server's configuration, not this script's.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ]; then
  echo "pg_cron: no PostgreSQL installation under /usr/lib/postgresql; skipped" >&2
  exit 0
fi
major=$(basename "$(dirname "$bindir")")
package="postgresql-$major-cron"
if [ -f "/usr/share/postgresql/$major/extension/pg_cron.control" ]; then
  echo "pg_cron: present for PostgreSQL $major ($package)"
elif [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package") >/dev/null
  echo "pg_cron: installed Debian's $package package"
else
  echo "pg_cron: missing for PostgreSQL $major; install Debian's $package package (as root: apt-get install $package)" >&2
  exit 1
fi
