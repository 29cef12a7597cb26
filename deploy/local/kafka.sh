#!/usr/bin/env bash
# Local single-node Apache Kafka 3.9 broker (KRaft, no ZooKeeper, no Docker),
# run from the Maven Central artifacts resolved by deploy/local/kafka/pom.xml.
#
# Usage: deploy/local/kafka.sh start|stop|status|brokers|topics <TopicCommand args>
#
# Env:
#   KAFKA_PORT             PLAINTEXT port on 127.0.0.1 (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port on 127.0.0.1 (default 19093)
#   KAFKA_BROKERS          if set (and not this local broker), `start` does nothing
#   KAFKA_HEAP_OPTS        default "-Xmx512m -Xms256m"
#   KAFKA_JVM_OPTS         default "-XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError ..."
#   KAFKA_START_TIMEOUT    seconds to wait for the broker (default 90)
#   KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL (default 20)
#   MVN                    Maven command (default mvn); MVN_ARGS extra args (e.g. -o)
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_TAG=kafka

KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError -Xss512k -XX:MaxMetaspaceSize=256m -Djava.awt.headless=true}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
MVN="${MVN:-mvn}"

KAFKA_SRC_DIR="$LOCAL_SCRIPT_DIR/kafka"
KAFKA_POM="$KAFKA_SRC_DIR/pom.xml"
KAFKA_HOME="$LOCAL_DIR/kafka"
KAFKA_JARS="$KAFKA_HOME/jars"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_PROPS="$KAFKA_HOME/server.properties"
KAFKA_LOG="$LOG_DIR/kafka.log"
KAFKA_MVN_LOG="$LOG_DIR/kafka-maven.log"
KAFKA_PIDFILE="$RUN_DIR/kafka.pid"
LOCAL_BROKERS="127.0.0.1:${KAFKA_PORT}"

for v in KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_START_TIMEOUT KAFKA_STOP_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"

external_kafka() {
  [[ -n "${KAFKA_BROKERS:-}" && "${KAFKA_BROKERS}" != "$LOCAL_BROKERS" ]]
}

check_java() {
  command -v java >/dev/null 2>&1 || die "java not found on PATH (Kafka 3.9 needs Java 11+; 17 recommended)"
}

# ---------------------------------------------------------------- jars ----

jars_ready() {
  compgen -G "$KAFKA_JARS/kafka_2.13-*.jar" >/dev/null \
    && [[ -f "$KAFKA_JARS/.pom.sha256" ]] \
    && [[ "$(cat "$KAFKA_JARS/.pom.sha256")" == "$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)" ]]
}

resolve_jars() {
  if jars_ready; then
    return 0
  fi
  command -v "$MVN" >/dev/null 2>&1 || die "Maven ('$MVN') not found; it is needed once to fetch the Kafka jars"
  local tmp="$KAFKA_JARS.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$KAFKA_HOME"
  log "resolving Kafka jars from Maven Central into $KAFKA_JARS (first use; log: $KAFKA_MVN_LOG)"
  # shellcheck disable=SC2086
  if ! "$MVN" -B -q -Dstyle.color=never ${MVN_ARGS:-} -f "$KAFKA_POM" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime >"$KAFKA_MVN_LOG" 2>&1 9>&-; then
    rm -rf "$tmp"
    echo "----- Maven output ($KAFKA_MVN_LOG) -----" >&2
    tail -n 60 "$KAFKA_MVN_LOG" >&2 || true
    die "Maven could not resolve the Kafka artifacts (see above)"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || { rm -rf "$tmp"; die "Maven finished but no kafka_2.13 jar was copied to $tmp"; }
  rm -rf "$KAFKA_JARS"
  mv "$tmp" "$KAFKA_JARS"
  sha256sum "$KAFKA_POM" | cut -d' ' -f1 >"$KAFKA_JARS/.pom.sha256"
  log "resolved $(find "$KAFKA_JARS" -name '*.jar' | wc -l) jars"
}

# run_tool CLASS ARGS... : runs a Kafka CLI class with the cached jars.
run_tool() {
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Dlog4j.configuration="file:$KAFKA_SRC_DIR/tools-log4j.properties" \
    -cp "$KAFKA_JARS/*" "$@" 9>&-
}

# -------------------------------------------------------------- config ----

render_props() {
  mkdir -p "$KAFKA_DATA"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@KAFKA_DATA_DIR@|$KAFKA_DATA|g" \
      "$KAFKA_SRC_DIR/server.properties.template" >"$KAFKA_PROPS.tmp"
  mv "$KAFKA_PROPS.tmp" "$KAFKA_PROPS"
}

format_storage() {
  if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
    return 0
  fi
  local cluster_id
  cluster_id="$(run_tool kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG" | tail -n1 | tr -d '[:space:]')" \
    || { tail_log "$KAFKA_LOG" 20; die "StorageTool random-uuid failed"; }
  [[ -n "$cluster_id" ]] || die "StorageTool random-uuid printed nothing"
  log "formatting storage in $KAFKA_DATA (cluster id $cluster_id)"
  if ! run_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_PROPS" >>"$KAFKA_LOG" 2>&1; then
    tail_log "$KAFKA_LOG" 30
    die "StorageTool format failed"
  fi
}

# ------------------------------------------------------------- process ----

# is_our_broker PID -> 0 if PID is a live kafka.Kafka started with our properties file.
is_our_broker() {
  local pid="$1"
  pid_alive "$pid" || return 1
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmdline" == *" kafka.Kafka $KAFKA_PROPS"* ]]
}

# broker_pid -> prints the pid of our running broker, or nothing.
# Uses the pid file; falls back to scanning /proc for a java process running
# kafka.Kafka with this checkout's properties file (covers a lost pid file).
broker_pid() {
  local pid
  pid="$(read_pidfile "$KAFKA_PIDFILE")"
  if [[ -n "$pid" ]] && is_our_broker "$pid"; then
    echo "$pid"; return 0
  fi
  local f
  for f in /proc/[0-9]*/cmdline; do
    pid="${f#/proc/}"; pid="${pid%/cmdline}"
    if is_our_broker "$pid"; then
      echo "$pid"; return 0
    fi
  done
  return 0
}

# Metadata round trip: lists topics through the PLAINTEXT listener.
metadata_ok() {
  timeout 30 java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j.configuration="file:$KAFKA_SRC_DIR/tools-log4j.properties" \
    -cp "$KAFKA_JARS/*" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$LOCAL_BROKERS" --list >/dev/null 2>&1 9>&-
}

wait_ready() {
  local pid="$1" deadline=$(( $(now_s) + KAFKA_START_TIMEOUT ))
  while true; do
    if ! pid_alive "$pid"; then
      tail_log "$KAFKA_LOG" 60
      die "broker process $pid exited during start-up"
    fi
    if port_open 127.0.0.1 "$KAFKA_PORT" && metadata_ok; then
      return 0
    fi
    if (( $(now_s) >= deadline )); then
      tail_log "$KAFKA_LOG" 60
      die "broker (pid $pid) did not answer a metadata request on $LOCAL_BROKERS within ${KAFKA_START_TIMEOUT}s"
    fi
    sleep 0.25
  done
}

cmd_start() {
  if external_kafka; then
    log "KAFKA_BROKERS is set ($KAFKA_BROKERS); using it, not starting a local broker"
    return 0
  fi
  check_java
  take_lock kafka
  ensure_dirs
  local pid; pid="$(broker_pid)"
  if [[ -n "$pid" ]]; then
    echo "$pid" >"$KAFKA_PIDFILE"
    wait_ready "$pid"
    log "already running (pid $pid) on $LOCAL_BROKERS; reusing it"
    return 0
  fi
  rm -f "$KAFKA_PIDFILE"
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open 127.0.0.1 "$p"; then
      die "port 127.0.0.1:$p is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
    fi
  done

  resolve_jars
  render_props
  printf '\n===== %s start requested by deploy/local/kafka.sh =====\n' "$(date -u +%FT%TZ)" >>"$KAFKA_LOG"
  format_storage

  log "starting broker on $LOCAL_BROKERS (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT, log: $KAFKA_LOG)"
  # setsid: own session, so Ctrl-C or a test runner killing the caller's
  # process group does not take the broker down. The inner bash writes its
  # pid and execs java, so the pid file holds the java pid.
  # shellcheck disable=SC2086
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PIDFILE" \
    java $KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS \
      -Dlog4j.configuration="file:$KAFKA_SRC_DIR/log4j.properties" \
      -Dkafka.logs.dir="$LOG_DIR" \
      -cp "$KAFKA_JARS/*" kafka.Kafka "$KAFKA_PROPS" \
    </dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
  disown 2>/dev/null || true

  local i
  for i in $(seq 1 50); do
    pid="$(read_pidfile "$KAFKA_PIDFILE")"
    [[ -n "$pid" ]] && break
    sleep 0.1
  done
  [[ -n "$pid" ]] || { tail_log "$KAFKA_LOG" 30; die "broker did not write its pid file $KAFKA_PIDFILE"; }
  wait_ready "$pid"
  log "ready (pid $pid): $LOCAL_BROKERS"
}

cmd_stop() {
  take_lock kafka
  local pid; pid="$(broker_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$KAFKA_PIDFILE"
    log "not running"
    return 0
  fi
  log "stopping (pid $pid, SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(( $(now_s) + KAFKA_STOP_TIMEOUT ))
  while pid_alive "$pid"; do
    if (( $(now_s) >= deadline )); then
      log "still running after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      local j
      for j in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
      pid_alive "$pid" && die "broker pid $pid survived SIGKILL"
      break
    fi
    sleep 0.2
  done
  rm -f "$KAFKA_PIDFILE"
  log "stopped"
}

cmd_status() {
  if external_kafka; then
    log "KAFKA_BROKERS is set (external: $KAFKA_BROKERS); local broker:"
  fi
  local pid; pid="$(broker_pid)"
  if [[ -n "$pid" ]]; then
    if port_open 127.0.0.1 "$KAFKA_PORT"; then
      echo "running (pid $pid) on $LOCAL_BROKERS, data $KAFKA_DATA"
    else
      echo "starting (pid $pid), $LOCAL_BROKERS not accepting connections yet"
    fi
    return 0
  fi
  echo "stopped"
  return 3
}

cmd_brokers() {
  if external_kafka; then
    echo "$KAFKA_BROKERS"
  else
    echo "$LOCAL_BROKERS"
  fi
}

# topics ARGS... : org.apache.kafka.tools.TopicCommand against the brokers,
# e.g. `kafka.sh topics --list` or `kafka.sh topics --create --topic t1`.
cmd_topics() {
  check_java
  jars_ready || resolve_jars
  run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(cmd_brokers)" "$@"
}

usage() {
  cat >&2 <<EOF
usage: $0 start|stop|status|brokers|topics <args>
  start          resolve jars (first use), format storage (first use), start, wait for metadata (idempotent)
  stop           SIGTERM, wait up to ${KAFKA_STOP_TIMEOUT}s, then SIGKILL (idempotent)
  status         prints running/stopped (exit 0 when running, 3 when stopped)
  brokers        prints the bootstrap servers ($LOCAL_BROKERS)
  topics <args>  runs org.apache.kafka.tools.TopicCommand --bootstrap-server <brokers> <args>
env: KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (19093), KAFKA_BROKERS (external broker: start does nothing),
     KAFKA_HEAP_OPTS, KAFKA_JVM_OPTS, KAFKA_START_TIMEOUT (90), KAFKA_STOP_TIMEOUT (20), MVN, MVN_ARGS
EOF
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  brokers) cmd_brokers ;;
  topics) shift; cmd_topics "$@" ;;
  -h|--help|help) usage ;;
  *) usage; exit 2 ;;
esac
