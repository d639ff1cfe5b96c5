# PostgreSQL 15 from Debian's packages, in a data directory of the stack's own.

PG_BIN=/usr/lib/postgresql/15/bin

postgres_install() {
  ensure_debian_packages postgresql-15 postgresql-client-15
}

postgres_healthy() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$HITL_POSTGRES_PORT"; }

postgres_sql() {
  PGPASSWORD=$HITL_POSTGRES_PASSWORD "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 \
    -p "$HITL_POSTGRES_PORT" -U "$HITL_POSTGRES_USER" -d postgres "$@"
}

postgres_ensure_database() {
  local db=$1
  if [ -z "$(postgres_sql -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
    postgres_sql -c "CREATE DATABASE \"$db\""
  fi
}

postgres_up() {
  local data=$DATA_DIR/postgres socket=$RUN_DIR/postgres
  if running_pid postgres "$PG_BIN/postgres" >/dev/null && postgres_healthy; then
    say "postgres    already running"
    return 0
  fi
  mkdir -p "$data" "$socket"
  own_by_service_user "$data" "$socket"
  if [ ! -f "$data/PG_VERSION" ]; then
    local pwfile; pwfile=$(mktemp)
    printf '%s\n' "$HITL_POSTGRES_PASSWORD" >"$pwfile"
    chmod 644 "$pwfile"
    as_service_user "$PG_BIN/initdb" -D "$data" -U "$HITL_POSTGRES_USER" --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >>"$(log_file postgres)" 2>&1 ||
      { rm -f "$pwfile"; tail -n 20 "$(log_file postgres)" >&2; fail "initdb failed"; }
    rm -f "$pwfile"
  fi
  start_background postgres $(service_user_prefix) "$PG_BIN/postgres" -D "$data" -p "$HITL_POSTGRES_PORT" \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories="$socket" -c max_connections=200 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off
  wait_healthy postgres 60 postgres_healthy
  postgres_ensure_database "$HITL_POSTGRES_DB"
  postgres_ensure_database argilla
  say "postgres    up on 127.0.0.1:$HITL_POSTGRES_PORT (database $HITL_POSTGRES_DB)"
}

# SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to disconnect.
postgres_down() { stop_process postgres "$PG_BIN/postgres" INT; }
