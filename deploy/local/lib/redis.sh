# Redis from Debian's packages: Argilla's job queue, through which its webhooks are delivered.

redis_install() { ensure_debian_packages redis-server redis-tools; }

redis_healthy() { [ "$(redis-cli -h 127.0.0.1 -p "$HITL_REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

redis_up() {
  if running_pid redis redis-server >/dev/null && redis_healthy; then
    say "redis       already running"
    return 0
  fi
  mkdir -p "$DATA_DIR/redis"
  start_background redis redis-server --bind 127.0.0.1 --port "$HITL_REDIS_PORT" \
    --dir "$DATA_DIR/redis" --save "" --appendonly no --protected-mode yes
  wait_healthy redis 30 redis_healthy
  say "redis       up on 127.0.0.1:$HITL_REDIS_PORT"
}

redis_down() { stop_process redis redis-server TERM; }
