# shellcheck shell=bash
# Shared helpers for deploy/local/*.sh. Source it; do not execute it.
#
# Everything the local services write lives under "$REPO_ROOT/.local" (git-ignored):
#   .local/pg            Postgres data directory
#   .local/kafka/data    Kafka log dirs (KRaft metadata + topic data)
#   .local/kafka/jars    Kafka jars resolved from Maven Central
#   .local/logs          postgres.log, kafka.log
#   .local/run           pid files, lock files, Postgres unix socket dir

# Repo root = two levels above this file, whatever the caller's cwd is.
LOCAL_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$LOCAL_SCRIPT_DIR/../.." && pwd -P)"
LOCAL_DIR="$REPO_ROOT/.local"
RUN_DIR="$LOCAL_DIR/run"
LOG_DIR="$LOCAL_DIR/logs"

# Human-readable messages go to stderr so that stdout stays machine-readable
# (url, brokers, export lines).
log() { printf '[%s] %s\n' "${LOG_TAG:-local}" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "${LOG_TAG:-local}" "$*" >&2; exit 1; }

ensure_dirs() { mkdir -p "$RUN_DIR" "$LOG_DIR"; }

# pid_alive PID -> 0 if a process with that pid exists (and is not a zombie).
pid_alive() {
  local pid="${1:-}"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local state
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
  [[ "$state" != "Z" ]]
}

# read_pidfile FILE -> prints the pid stored in FILE (empty if none).
read_pidfile() { [[ -f "$1" ]] && tr -dc '0-9' <"$1" || true; }

# port_open HOST PORT -> 0 if something accepts TCP connections there.
port_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# take_lock NAME -> serialises concurrent start/stop calls for one service.
# The lock is held on fd 9 until the script exits; every long-lived child
# must be started with `9>&-` so it does not inherit (and keep) the lock.
take_lock() {
  ensure_dirs
  exec 9>"$RUN_DIR/$1.lock"
  flock -w 180 9 || die "timed out waiting for lock $RUN_DIR/$1.lock"
}

# tail_log FILE [N] -> prints the last N lines of FILE to stderr.
tail_log() {
  local file="$1" n="${2:-60}"
  if [[ -f "$file" ]]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$file" >&2
    tail -n "$n" "$file" >&2 || true
    printf -- '----- end of %s -----\n' "$file" >&2
  else
    printf -- '(no log file at %s)\n' "$file" >&2
  fi
}

# now_s -> seconds since epoch (integer), for timeouts.
now_s() { date +%s; }
