# Apache Kafka 4 in KRaft mode (one combined broker and controller), from Maven Central jars.

kafka_install() {
  command -v java >/dev/null || ensure_debian_packages openjdk-17-jre-headless
  command -v mvn >/dev/null || ensure_debian_packages maven
  local stamp; stamp=$(stamp_of "$LOCAL_DIR/kafka/pom.xml")
  stamp_matches "$CACHE_DIR/kafka.stamp" "$stamp" && [ -f "$CACHE_DIR/kafka.classpath" ] && return 0
  say "resolving the Kafka broker from Maven Central"
  mvn -q -B -f "$LOCAL_DIR/kafka/pom.xml" -Dmaven.repo.local="$CACHE_DIR/m2" \
    dependency:build-classpath -Dmdep.includeScope=runtime \
    -Dmdep.outputFile="$CACHE_DIR/kafka.classpath" >"$LOG_DIR/kafka-install.log" 2>&1 ||
    { tail -n 30 "$LOG_DIR/kafka-install.log" >&2; fail "could not resolve the Kafka broker"; }
  echo "$stamp" >"$CACHE_DIR/kafka.stamp"
}

kafka_healthy() { probe kafka "127.0.0.1:$HITL_KAFKA_PORT"; }

kafka_write_config() {
  cat >"$1" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$HITL_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$HITL_KAFKA_PORT,CONTROLLER://127.0.0.1:$HITL_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$HITL_KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA_DIR/kafka
auto.create.topics.enable=false
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
PROPS
}

kafka_up() {
  if running_pid kafka kafka.Kafka >/dev/null && kafka_healthy; then
    say "kafka       already running"
    return 0
  fi
  local classpath config=$RUN_DIR/kafka-server.properties
  classpath=$(cat "$CACHE_DIR/kafka.classpath")
  mkdir -p "$DATA_DIR/kafka"
  kafka_write_config "$config"
  local java_opts=(-Dlog4j2.configurationFile="$LOCAL_DIR/kafka/log4j2.properties" -cp "$classpath")
  if [ ! -f "$DATA_DIR/kafka/meta.properties" ]; then
    local cluster_id
    cluster_id=$(java "${java_opts[@]}" kafka.tools.StorageTool random-uuid 2>>"$(log_file kafka)" | tail -n 1)
    java "${java_opts[@]}" kafka.tools.StorageTool format --standalone -t "$cluster_id" \
      -c "$config" --ignore-formatted >>"$(log_file kafka)" 2>&1 || fail "formatting Kafka's storage failed; see $(log_file kafka)"
  fi
  # The collector settings of Kafka's own start script: G1 aiming at 20 ms pauses, not its default
  # 200 ms, since a young collection holds every append for its length. Pauses go to kafka-gc.log.
  local gc_opts=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent "-Xlog:gc:file=$LOG_DIR/kafka-gc.log:uptime:filecount=2,filesize=10M")
  start_background kafka java -Xms256m -Xmx"$HITL_KAFKA_HEAP" "${gc_opts[@]}" "${java_opts[@]}" kafka.Kafka "$config"
  wait_healthy kafka 120 kafka_healthy
  say "kafka       up on 127.0.0.1:$HITL_KAFKA_PORT"
}

kafka_down() { stop_process kafka kafka.Kafka TERM; }
