# Label Studio 1.23, an optional second review backend: `deploy/local/stack up --with label-studio`.
# Its database lives in the stack's PostgreSQL, its files under data/label-studio. It serves with
# Django's own server, one process, and sends webhooks from the request that causes them.

label_studio_venv() { echo "$CACHE_DIR/label-studio-venv"; }

label_studio_installed() {
  stamp_matches "$(label_studio_venv)/.installed" "$(stamp_of "$LOCAL_DIR/label-studio/requirements.txt")"
}

label_studio_install() {
  install_venv "$(label_studio_venv)" "$LOCAL_DIR/label-studio/requirements.txt" "Label Studio" label-studio \
    "about 1 GB, 2 minutes"
}

# Its legacy API token is stored as a Django REST framework token: 6 to 40 characters, sent as
# `Authorization: Token <token>`, so no whitespace.
label_studio_check_settings() {
  [[ $HITL_LABEL_STUDIO_TOKEN =~ ^[A-Za-z0-9._-]{6,40}$ ]] ||
    fail "HITL_LABEL_STUDIO_TOKEN must be 6 to 40 letters, digits, '.', '_' or '-'"
  [[ $HITL_LABEL_STUDIO_USERNAME == *@* ]] || fail "HITL_LABEL_STUDIO_USERNAME must be an email address"
}

label_studio_environment() {
  local home=$DATA_DIR/label-studio
  mkdir -p "$home"
  # Label Studio writes its secret key, media and caches under these, never under the real home.
  export LABEL_STUDIO_BASE_DATA_DIR=$home HOME=$home XDG_DATA_HOME=$home XDG_CACHE_HOME=$home/cache
  export PYTHONPATH="$LOCAL_DIR/label-studio" DJANGO_SETTINGS_MODULE=stack_settings
  export DJANGO_DB=default POSTGRE_HOST=127.0.0.1 POSTGRE_PORT=$HITL_POSTGRES_PORT \
    POSTGRE_USER=$HITL_POSTGRES_USER POSTGRE_PASSWORD=$HITL_POSTGRES_PASSWORD POSTGRE_NAME=label_studio
  export LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true
  # The webhook receivers listen on loopback, which its SSRF protection refuses by default.
  export USE_DEFAULT_BANNED_SUBNETS=false
  export SENTRY_DSN= FRONTEND_SENTRY_DSN= LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false
}

label_studio_url() { echo "http://127.0.0.1:$HITL_LABEL_STUDIO_PORT"; }

label_studio_healthy() {
  local url; url=$(label_studio_url)
  probe http "$url/api/current-user/whoami" --header "Authorization: Token $HITL_LABEL_STUDIO_TOKEN" \
    --expect-json-key "email=$HITL_LABEL_STUDIO_USERNAME"
}

# Any HTTP answer, a refusal of the token included: the server is up.
label_studio_answers() {
  python3 - "$(label_studio_url)/api/current-user/whoami" "$HITL_LABEL_STUDIO_TOKEN" <<'PY'
import sys, urllib.error, urllib.request
try:
    request = urllib.request.Request(sys.argv[1], headers={"Authorization": f"Token {sys.argv[2]}"})
    urllib.request.urlopen(request, timeout=5)
except urllib.error.HTTPError:
    pass
PY
}

label_studio_port_taken() {
  python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)' \
    "$HITL_LABEL_STUDIO_PORT" 2>/dev/null
}

label_studio_running() { running_pid label-studio "label-studio start" >/dev/null; }

# Waits for the first answer, and stops waiting as soon as the server has exited.
label_studio_wait() {
  local deadline=$((SECONDS + 180))
  until label_studio_answers 2>/dev/null; do
    if ! label_studio_running || [ $SECONDS -ge $deadline ]; then
      printf 'stack: label-studio did not answer. Last lines of %s:\n' "$(log_file label-studio)" >&2
      tail -n 40 "$(log_file label-studio)" >&2
      exit 1
    fi
    sleep 1
  done
  label_studio_healthy 2>/dev/null ||
    fail "Label Studio refuses HITL_LABEL_STUDIO_TOKEN for $HITL_LABEL_STUDIO_USERNAME: that user was made" \
      "by an earlier first start, with another token (\`deploy/local/stack reset\` starts afresh)"
}

label_studio_up() {
  label_studio_check_settings
  if label_studio_running; then
    label_studio_wait
    say "label-studio already running"
    return 0
  fi
  # On a taken port Label Studio would quietly move to the next free one.
  label_studio_port_taken && fail "port $HITL_LABEL_STUDIO_PORT is taken; set HITL_LABEL_STUDIO_PORT"
  postgres_ensure_database label_studio
  # The user and its token are made on the first start only; later starts keep them. The subshell
  # keeps its HOME and PYTHONPATH away from what the stack runs next.
  (
    label_studio_environment
    start_background label-studio "$(label_studio_venv)/bin/label-studio" start --no-browser \
      --internal-host 127.0.0.1 --port "$HITL_LABEL_STUDIO_PORT" --host "$(label_studio_url)" \
      --username "$HITL_LABEL_STUDIO_USERNAME" --password "$HITL_LABEL_STUDIO_PASSWORD" \
      --user-token "$HITL_LABEL_STUDIO_TOKEN" --enable-legacy-api-token
  )
  label_studio_wait
  say "label-studio up on $(label_studio_url) (admin $HITL_LABEL_STUDIO_USERNAME)"
}

label_studio_down() { stop_process label-studio "label-studio start" TERM; }
