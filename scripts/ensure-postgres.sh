#!/usr/bin/env bash
# Prints a DATABASE_URL whose server answers, on stdout; says what it did in
# one line on stderr. Uses $DATABASE_URL (or the default) when its server
# answers; otherwise starts a private cluster under .data/postgres on port
# 55432 from the machine's PostgreSQL binaries, installing Debian's
# postgresql package first when running as root and none is found.
set -euo pipefail
cd "$(dirname "$0")/.."

default_url="postgres://postgres@127.0.0.1:5432/opsmantik?sslmode=disable"
url="${DATABASE_URL:-$default_url}"
private_port=55432
private_url="postgres://postgres@127.0.0.1:${private_port}/opsmantik?sslmode=disable"
datadir="$PWD/.data/postgres"

answers() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

hostport=$(printf '%s' "$url" | sed -E 's#^[a-z]+://([^@/]*@)?([^/?]*).*#\2#')
host=${hostport%%:*}; port=${hostport##*:}
[ "$port" = "$hostport" ] && port=5432
[ -n "$host" ] || host=127.0.0.1

if answers "$host" "$port"; then
  echo "postgres: using the server at $host:$port" >&2
  printf '%s\n' "$url"
  exit 0
fi

if answers 127.0.0.1 "$private_port"; then
  echo "postgres: nothing answers at $host:$port; using the private cluster at 127.0.0.1:$private_port" >&2
  printf '%s\n' "$private_url"
  exit 0
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "postgres: no server answers and no binaries found; installing Debian's postgresql package" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null 2>&1
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  else
    echo "postgres: no server answers at $host:$port and no PostgreSQL binaries are installed (install the postgresql package)" >&2
    exit 1
  fi
fi

as_pg=()
if [ "$(id -u)" = 0 ]; then
  as_pg=(runuser -u postgres --)
fi
mkdir -p "$datadir"
[ "$(id -u)" = 0 ] && chown -R postgres "$PWD/.data"
if [ ! -f "$datadir/PG_VERSION" ]; then
  "${as_pg[@]}" "$bindir/initdb" -D "$datadir" -U postgres --auth=trust >/dev/null
fi
"${as_pg[@]}" "$bindir/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w \
  -o "-p $private_port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >/dev/null
echo "postgres: nothing answers at $host:$port; started a private cluster under .data/postgres on 127.0.0.1:$private_port" >&2
printf '%s\n' "$private_url"
