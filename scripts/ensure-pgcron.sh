#!/usr/bin/env bash
# Makes sure what the daily-analytics tests start on their own is installed:
# Debian's pg_cron for the machine's newest PostgreSQL (postgresql-NN-cron;
# the tests run a private cluster with shared_preload_libraries=pg_cron) and
# PgBouncer (the refresh is tested through a transaction-mode pooler).
# Installs what is missing when running as root; says what it did in one
# line on stderr.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ]; then
  echo "pg_cron: no PostgreSQL binaries under /usr/lib/postgresql (scripts/ensure-postgres.sh installs them)" >&2
  exit 1
fi
ver=$(basename "$(dirname "$bindir")")
missing=()
[ -f "/usr/lib/postgresql/$ver/lib/pg_cron.so" ] || missing+=("postgresql-$ver-cron")
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)

if [ ${#missing[@]} -eq 0 ]; then
  echo "pg_cron: postgresql-$ver-cron and pgbouncer are installed" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "pg_cron: install ${missing[*]} (apt-get install ${missing[*]}) for the analytics tests" >&2
  exit 1
fi
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 || {
  echo "pg_cron: apt-get install ${missing[*]} failed" >&2
  exit 1
}
echo "pg_cron: installed ${missing[*]}" >&2
