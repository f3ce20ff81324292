#!/usr/bin/env bash
# Makes sure the pooler tests can run: Debian's pgbouncer package, whose
# daemon the tests start themselves in front of the test PostgreSQL
# (pkg/dbtest, OPSMANTIK_TEST_PGBOUNCER). Installs it with apt-get when
# running as root. Prints one line.
set -euo pipefail

pgbouncer=/usr/sbin/pgbouncer # where pkg/dbtest/pgbouncer looks first
if [ -x "$pgbouncer" ]; then
  echo "pgbouncer: present at $pgbouncer ($("$pgbouncer" --version | head -n 1))"
elif [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer) >/dev/null
  echo "pgbouncer: installed Debian's pgbouncer package ($("$pgbouncer" --version | head -n 1))"
else
  echo "pgbouncer: $pgbouncer is missing; install Debian's pgbouncer package (as root: apt-get install pgbouncer)" >&2
  exit 1
fi
