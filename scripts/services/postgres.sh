#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for development and tests (docs/ARCHITECTURE.md section 8.3).
#
#   scripts/services/postgres.sh start     create the cluster on first use, then start it (idempotent)
#   scripts/services/postgres.sh stop      stop it (idempotent; the data stays)
#   scripts/services/postgres.sh url       print the superuser connection URL (TLS, verify-full)
#   scripts/services/postgres.sh status    exit 0 when running
#   scripts/services/postgres.sh destroy   stop it and delete its folder
#
# Environment:
#   REVIEWS_PG_DIR   the cluster's folder (default: .cache/services/postgres when the postgres
#                    user can reach it, else /tmp/reviews-postgres-<hash of the repo path>)
#   PGPORT           the port, on first start only (default: a free port); kept in $DIR/port
#
# The cluster listens on 127.0.0.1 only, with its Unix socket in its own folder, password
# (SCRAM-SHA-256) authentication for every connection, and fsync, synchronous_commit and
# full_page_writes off: fast, and not durable. Never use it for data you want to keep.
# TCP connections must use TLS (hostssl; plain TCP is rejected), with a certificate for
# 127.0.0.1/localhost signed by a CA made for this cluster ($DIR/tls/ca.pem); `url` prints
# sslmode=verify-full&sslrootcert=<that CA>, as a production URL to RDS would.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"

if [ "$(id -u)" = 0 ]; then
  # initdb and postgres refuse to run as root: run them as the postgres user.
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

default_dir() {
  local cache="$root/.cache/services"
  mkdir -p "$cache"
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$cache"; then
    echo "$cache/postgres"
  else
    echo "/tmp/reviews-postgres-$(printf '%s' "$root" | sha256sum | cut -c1-10)"
  fi
}
DIR="${REVIEWS_PG_DIR:-$(default_dir)}"
DATA="$DIR/data"

ensure_installed() {
  if [ ! -x "$PG_BIN/pg_ctl" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "postgres.sh: installing postgresql-15 (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql-15 >&2
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

running() {
  [ -f "$DATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

init_cluster() {
  ensure_installed
  mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
  chmod 700 "$DIR"
  local port="${PGPORT:-$(free_port)}"
  local pw
  pw="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  (umask 077; printf '%s\n' "$pw" >"$DIR/superuser.password")
  [ "$(id -u)" = 0 ] && chown postgres: "$DIR/superuser.password"
  as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres --pwfile="$DIR/superuser.password" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || {
    cat "$DIR/initdb.log" >&2
    exit 1
  }
  printf '%s\n' "$port" >"$DIR/port"
  as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<EOF

# reviews test cluster (scripts/services/postgres.sh): loopback only, not durable
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
EOF
}

# A CA and a server certificate for this cluster, TLS on, and TCP without TLS rejected.
# Idempotent (also brings a cluster made before TLS up to date).
ensure_tls() {
  local tls="$DIR/tls"
  if [ ! -f "$tls/server.crt" ]; then
    mkdir -p "$tls"
    (
      cd "$tls"
      umask 077
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -keyout ca.key -out ca.pem -subj "/CN=reviews test cluster CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >server.ext
      openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile server.ext -out server.crt 2>/dev/null
      rm -f server.csr server.ext ca.srl
      chmod 644 ca.pem server.crt
    )
    chmod 755 "$tls"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$tls"
  fi
  if ! as_pg grep -q "^ssl = on" "$DATA/postgresql.conf"; then
    as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<EOF
ssl = on
ssl_cert_file = '$tls/server.crt'
ssl_key_file = '$tls/server.key'
EOF
  fi
  as_pg tee "$DATA/pg_hba.conf" >/dev/null <<'EOF'
# reviews test cluster: TLS for every TCP connection, SCRAM passwords everywhere
local     all all               scram-sha-256
hostssl   all all 127.0.0.1/32  scram-sha-256
hostnossl all all 0.0.0.0/0     reject
hostnossl all all ::/0          reject
EOF
}

cmd="${1:-}"
# One start/stop at a time per folder (tests in parallel processes may all call start).
if [ "$cmd" != url ] && [ "$cmd" != status ]; then
  mkdir -p "$(dirname "$DIR")"
  exec 9>"$DIR.lock"
  flock 9
fi
case "$cmd" in
  start)
    if running; then
      echo "postgres.sh: already running on port $(cat "$DIR/port") ($DIR)" >&2
      exit 0
    fi
    [ -f "$DATA/PG_VERSION" ] || init_cluster
    ensure_tls
    started=$(date +%s.%N)
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 60 start >/dev/null 9>&- || {
      tail -20 "$DIR/server.log" >&2
      exit 1
    }
    echo "postgres.sh: started on 127.0.0.1:$(cat "$DIR/port") in $(python3 -c "import time; print(round(time.time()-$started, 2))") s ($DIR)" >&2
    ;;
  stop)
    if running; then
      as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
      echo "postgres.sh: stopped ($DIR)" >&2
    fi
    ;;
  status)
    running
    ;;
  url)
    [ -f "$DIR/port" ] || { echo "postgres.sh: no cluster in $DIR; run start first" >&2; exit 1; }
    echo "postgres://postgres:$(cat "$DIR/superuser.password")@127.0.0.1:$(cat "$DIR/port")/postgres?sslmode=verify-full&sslrootcert=$DIR/tls/ca.pem"
    ;;
  destroy)
    if running; then as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null; fi
    rm -rf "$DIR" "$DIR.lock"
    ;;
  *)
    echo "usage: $0 start|stop|url|status|destroy" >&2
    exit 2
    ;;
esac
