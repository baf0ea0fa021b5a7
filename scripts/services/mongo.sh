#!/usr/bin/env bash
# A MongoDB wire-compatible server for development and tests: SecantusDB (PyPI
# `SecantusDB==0.7.0b3`, a MongoDB wire-protocol server on WiredTiger, GPL-2.0). It is a
# STAND-IN for MongoDB: no real `mongod` can be installed on this machine (docs/ARCHITECTURE.md
# section 8.3).
# It is installed into a venv under .cache/ on first use and is not part of, nor shipped
# with, this project. Production uses a real MongoDB (or Atlas).
#
#   scripts/services/mongo.sh start       install on first use, provision users, start (idempotent)
#   scripts/services/mongo.sh stop        stop it (idempotent; the data stays)
#   scripts/services/mongo.sh url         print the archive writer's URI (user etl_writer)
#   scripts/services/mongo.sh url admin   print the administrator's URI
#   scripts/services/mongo.sh status      exit 0 when it answers
#   scripts/services/mongo.sh destroy     stop it and delete its folder
#
# Environment:
#   REVIEWS_MONGO_DIR    the server's folder (default .cache/services/mongo)
#   REVIEWS_MONGO_PORT   the port, on first start only (default: a free port); kept in $DIR/port
#   REVIEWS_MONGO_VENV   the venv (default .cache/mongo-venv)
#
# Users: on first start the server runs once without authentication to create two users, then
# always runs with --auth (SCRAM-SHA-256), which SecantusDB enforces, roles included:
#   admin       root
#   etl_writer  readWrite on the database reviews_archive only (the archive's dedicated writer)
# Their random passwords are in $DIR/admin.password and $DIR/writer.password (mode 0600).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${REVIEWS_MONGO_DIR:-$root/.cache/services/mongo}"
VENV="${REVIEWS_MONGO_VENV:-$root/.cache/mongo-venv}"
ARCHIVE_DB="reviews_archive"

ensure_installed() {
  if [ ! -x "$VENV/bin/secantusd-py" ]; then
    echo "mongo.sh: installing SecantusDB==0.7.0b3 into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'SecantusDB==0.7.0b3' >&2
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pid_alive() {
  [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null
}

# ping USER PASSWORD: exit 0 when the server answers an (authenticated) ping and is the
# writable primary of its one-member replica set (just after a restart it may answer a ping
# before it reports a primary, and a writer's client then fails with ReplicaSetNoPrimary).
ping_as() {
  "$VENV/bin/python" - "$(cat "$DIR/port")" "$@" <<'EOF' >/dev/null 2>&1
import sys, pymongo
port = int(sys.argv[1])
kw = dict(serverSelectionTimeoutMS=500, connectTimeoutMS=500)
if len(sys.argv) > 2:
    kw.update(username=sys.argv[2], password=sys.argv[3], authSource="admin")
admin = pymongo.MongoClient("127.0.0.1", port, directConnection=True, **kw).admin
admin.command("ping")
sys.exit(0 if admin.command("hello").get("isWritablePrimary") else 1)
EOF
}

answers() {
  if [ -f "$DIR/provisioned" ]; then
    ping_as admin "$(cat "$DIR/admin.password")"
  else
    ping_as
  fi
}

launch() { # launch [--auth]
  local port
  port="$(cat "$DIR/port")"
  setsid "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path "$DIR/data" \
    --log-level WARNING "$@" >>"$DIR/server.log" 2>&1 </dev/null 9>&- &
  echo $! >"$DIR/pid"
  for _ in $(seq 1 300); do
    if answers; then return 0; fi
    if ! pid_alive; then
      echo "mongo.sh: the server exited; see $DIR/server.log" >&2
      tail -20 "$DIR/server.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "mongo.sh: the server did not answer within 60 s; see $DIR/server.log" >&2
  return 1
}

halt() {
  if pid_alive; then
    local pid
    pid="$(cat "$DIR/pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/pid"
}

provision() {
  # First start: no users yet. Create them without auth, then restart with --auth.
  (umask 077
    python3 -c 'import secrets; print(secrets.token_hex(16))' >"$DIR/admin.password"
    python3 -c 'import secrets; print(secrets.token_hex(16))' >"$DIR/writer.password")
  launch
  "$VENV/bin/python" - "$(cat "$DIR/port")" "$(cat "$DIR/admin.password")" \
    "$(cat "$DIR/writer.password")" "$ARCHIVE_DB" <<'EOF'
import sys, pymongo
port, admin_pw, writer_pw, db = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
admin = pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=5000).admin
admin.command("createUser", "admin", pwd=admin_pw, roles=[{"role": "root", "db": "admin"}])
admin.command("createUser", "etl_writer", pwd=writer_pw,
              roles=[{"role": "readWrite", "db": db}])
EOF
  halt
  touch "$DIR/provisioned"
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
    mkdir -p "$DIR"
    if pid_alive && answers; then
      echo "mongo.sh: already running on port $(cat "$DIR/port") ($DIR)" >&2
      exit 0
    fi
    halt
    ensure_installed
    [ -f "$DIR/port" ] || printf '%s\n' "${REVIEWS_MONGO_PORT:-$(free_port)}" >"$DIR/port"
    started=$(date +%s.%N)
    [ -f "$DIR/provisioned" ] || provision
    launch --auth
    echo "mongo.sh: SecantusDB (MongoDB stand-in) started on 127.0.0.1:$(cat "$DIR/port") in $(python3 -c "import time; print(round(time.time()-$started, 2))") s ($DIR)" >&2
    ;;
  stop)
    if pid_alive; then
      halt
      echo "mongo.sh: stopped ($DIR)" >&2
    fi
    ;;
  status)
    pid_alive && answers
    ;;
  url)
    [ -f "$DIR/provisioned" ] || { echo "mongo.sh: no server in $DIR; run start first" >&2; exit 1; }
    port="$(cat "$DIR/port")"
    if [ "${2:-}" = admin ]; then
      echo "mongodb://admin:$(cat "$DIR/admin.password")@127.0.0.1:$port/?authSource=admin"
    else
      echo "mongodb://etl_writer:$(cat "$DIR/writer.password")@127.0.0.1:$port/$ARCHIVE_DB?authSource=admin"
    fi
    ;;
  destroy)
    halt
    rm -rf "$DIR" "$DIR.lock"
    ;;
  *)
    echo "usage: $0 start|stop|url [admin]|status|destroy" >&2
    exit 2
    ;;
esac
