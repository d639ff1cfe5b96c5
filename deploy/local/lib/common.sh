# Shared helpers of deploy/local/stack: paths, settings, processes and health waits.
# Sourced, never run.

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
LOCAL_DIR="$REPO_DIR/deploy/local"

# Settings, each overridable from the environment. The client-side names (HITL_KAFKA_BOOTSTRAP,
# HITL_POSTGRES_DSN, HITL_ARGILLA_*, HITL_LABEL_STUDIO_URL and HITL_LABEL_STUDIO_TOKEN) are the ones
# the workers and tests read, and docker-compose.yml uses the same ones.
: "${HITL_KAFKA_PORT:=9092}"
: "${HITL_KAFKA_CONTROLLER_PORT:=$((HITL_KAFKA_PORT + 1))}"
: "${HITL_KAFKA_HEAP:=768m}"
: "${HITL_POSTGRES_PORT:=5432}"
: "${HITL_POSTGRES_USER:=hitl}"
: "${HITL_POSTGRES_PASSWORD:=hitl}"
: "${HITL_POSTGRES_DB:=hitl}"
: "${HITL_REDIS_PORT:=6379}"
: "${HITL_SEARCH_PORT:=9200}"
: "${HITL_SEARCH_HEAP:=512m}"
: "${HITL_ARGILLA_PORT:=6900}"
: "${HITL_ARGILLA_USERNAME:=argilla}"
: "${HITL_ARGILLA_PASSWORD:=12345678}"
: "${HITL_ARGILLA_API_KEY:=argilla.apikey}"
: "${HITL_LABEL_STUDIO_PORT:=8090}"
: "${HITL_LABEL_STUDIO_USERNAME:=reviewer-admin@hitl.local}"
: "${HITL_LABEL_STUDIO_PASSWORD:=hitl-reviewer}"
: "${HITL_LABEL_STUDIO_TOKEN:=hitl-label-studio-token}"

# PostgreSQL and OpenSearch refuse to run as root; when the stack is started by root they run as
# this system user, which must be able to reach the stack folder.
SERVICE_USER=hitl-stack

is_root() { [ "$(id -u)" = 0 ]; }

say() { printf '%s\n' "$*"; }
fail() { printf 'stack: %s\n' "$*" >&2; exit 1; }

resolve_stack_dir() {
  STACK_DIR=${HITL_STACK_DIR:-$(default_stack_dir)}
  CACHE_DIR=${HITL_STACK_CACHE:-$STACK_DIR/cache}
  DATA_DIR=$STACK_DIR/data
  LOG_DIR=$STACK_DIR/logs
  RUN_DIR=$STACK_DIR/run
  mkdir -p "$CACHE_DIR" "$DATA_DIR" "$LOG_DIR" "$RUN_DIR"
}

# .stack/ in the checkout; when root runs the stack from a folder the service user cannot reach
# (under /root, say), a folder of the machine's own instead, one per checkout.
default_stack_dir() {
  if is_root && ! service_user_can_reach "$REPO_DIR"; then
    echo "/var/lib/hitl-stack/$(basename "$REPO_DIR")-$(printf '%s' "$REPO_DIR" | sha256sum | cut -c1-8)"
  else
    echo "$REPO_DIR/.stack"
  fi
}

ensure_service_user() {
  is_root || return 0
  id "$SERVICE_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
}

service_user_can_reach() {
  ensure_service_user
  setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --clear-groups test -x "$1" 2>/dev/null
}

# The command prefix that runs a program as the service user when we are root: nothing otherwise.
service_user_prefix() {
  if is_root; then echo setpriv --reuid="$SERVICE_USER" --regid="$SERVICE_USER" --clear-groups; fi
}

as_service_user() { $(service_user_prefix) "$@"; }

own_by_service_user() {
  if is_root; then chown -R "$SERVICE_USER:$SERVICE_USER" "$@"; fi
}

ensure_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} = 0 ] && return 0
  local sudo=""
  if ! is_root; then
    command -v sudo >/dev/null || fail "missing Debian packages: ${missing[*]} (install them as root)"
    sudo=sudo
  fi
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A stamp records what an install step was built from, so the step reruns only when that changes.
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
stamp_matches() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# install_venv VENV REQUIREMENTS NAME LOG [NOTE]: installs REQUIREMENTS into the virtual
# environment VENV, unless it holds them already; NAME says what it is, LOG names the install log.
install_venv() {
  local venv=$1 requirements=$2 name=$3 log=$LOG_DIR/$4-install.log note=${5:+ ($5)} stamp
  stamp=$(stamp_of "$requirements")
  stamp_matches "$venv/.installed" "$stamp" && return 0
  say "installing $name into $venv$note"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$requirements" >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; fail "could not install $name"; }
  echo "$stamp" >"$venv/.installed"
}

pid_file() { echo "$RUN_DIR/$1.pid"; }
log_file() { echo "$LOG_DIR/$1.log"; }

# The pid in the service's pid file, if that process is alive and still the one we started.
running_pid() {
  local file pid
  file=$(pid_file "$1")
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2" || return 1
  echo "$pid"
}

# start_background NAME CMD...: runs CMD detached, output appended to NAME's log, pid recorded.
start_background() {
  local name=$1; shift
  local log; log=$(log_file "$name")
  printf '\n=== %s starting at %s\n' "$name" "$(date -u +%FT%TZ)" >>"$log"
  setsid nohup "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$(pid_file "$name")"
}

# wait_healthy NAME SECONDS CHECK...: polls CHECK until it succeeds, or fails with the log's tail.
wait_healthy() {
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  while ! "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      printf 'stack: %s did not answer within %ss. Last lines of %s:\n' "$name" "$timeout" "$(log_file "$name")" >&2
      tail -n 40 "$(log_file "$name")" >&2
      exit 1
    fi
    sleep 1
  done
}

# stop_process NAME MATCH SIGNAL: signals the recorded process and waits for it to go.
stop_process() {
  local name=$1 match=$2 signal=${3:-TERM} pid
  if ! pid=$(running_pid "$name" "$match"); then
    rm -f "$(pid_file "$name")"
    return 0
  fi
  kill -s "$signal" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      say "  $name did not stop in 30s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  rm -f "$(pid_file "$name")"
  say "  stopped $name"
}

probe() { python3 "$LOCAL_DIR/probe.py" "$@"; }
