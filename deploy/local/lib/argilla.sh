# Argilla server 2.8 and its background job worker, which delivers webhooks through Redis.
# Its database lives in the stack's PostgreSQL, its records in OpenSearch.

argilla_venv() { echo "$CACHE_DIR/argilla-venv"; }

argilla_install() {
  install_venv "$(argilla_venv)" "$LOCAL_DIR/argilla/requirements.txt" "Argilla server" argilla
}

argilla_environment() {
  local home=$DATA_DIR/argilla
  mkdir -p "$home"
  [ -f "$home/auth-secret" ] || python3 -c 'import secrets; print(secrets.token_hex(32))' >"$home/auth-secret"
  export ARGILLA_HOME_PATH=$home
  export ARGILLA_DATABASE_URL="postgresql+asyncpg://$HITL_POSTGRES_USER:$HITL_POSTGRES_PASSWORD@127.0.0.1:$HITL_POSTGRES_PORT/argilla"
  export ARGILLA_SEARCH_ENGINE=opensearch
  export ARGILLA_ELASTICSEARCH="http://127.0.0.1:$HITL_SEARCH_PORT"
  export ARGILLA_REDIS_URL="redis://127.0.0.1:$HITL_REDIS_PORT/0"
  ARGILLA_AUTH_SECRET_KEY=$(cat "$home/auth-secret")
  export ARGILLA_AUTH_SECRET_KEY
  export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
}

argilla_server() { "$(argilla_venv)/bin/python" -m argilla_server "$@"; }

argilla_healthy() {
  probe http "http://127.0.0.1:$HITL_ARGILLA_PORT/api/v1/me" --header "X-Argilla-Api-Key: $HITL_ARGILLA_API_KEY"
}

argilla_worker_healthy() {
  running_pid argilla-worker "argilla_server worker" >/dev/null &&
    [ "$(redis-cli -h 127.0.0.1 -p "$HITL_REDIS_PORT" scard rq:workers 2>/dev/null)" -gt 0 ]
}

argilla_up() {
  argilla_environment
  if running_pid argilla "argilla_server start" >/dev/null && argilla_healthy; then
    say "argilla     already running"
  else
    argilla_server database migrate >>"$(log_file argilla)" 2>&1 ||
      { tail -n 30 "$(log_file argilla)" >&2; fail "Argilla's database migration failed"; }
    argilla_server database users create --first-name Owner --username "$HITL_ARGILLA_USERNAME" \
      --password "$HITL_ARGILLA_PASSWORD" --role owner --api-key "$HITL_ARGILLA_API_KEY" \
      >>"$(log_file argilla)" 2>&1 || fail "creating Argilla's owner user failed; see $(log_file argilla)"
    start_background argilla "$(argilla_venv)/bin/python" -m argilla_server start \
      --host 127.0.0.1 --port "$HITL_ARGILLA_PORT" --no-access-log
    wait_healthy argilla 120 argilla_healthy
    say "argilla     up on http://127.0.0.1:$HITL_ARGILLA_PORT (owner $HITL_ARGILLA_USERNAME)"
  fi
  if argilla_worker_healthy; then
    say "argilla-worker already running"
  else
    start_background argilla-worker "$(argilla_venv)/bin/python" -m argilla_server worker --num-workers 1
    wait_healthy argilla-worker 60 argilla_worker_healthy
    say "argilla-worker up (delivers webhooks)"
  fi
}

argilla_down() {
  stop_process argilla-worker "argilla_server worker" TERM
  stop_process argilla "argilla_server start" TERM
}
