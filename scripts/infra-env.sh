# Sourced by scripts/test.sh and scripts/demo.sh: makes sure a PostgreSQL and a Kafka broker
# are reachable and exports DATABASE_URL and KAFKA_BROKERS. When those variables are already
# set, nothing is started. Whatever this starts is stopped again on exit (by the local
# scripts, which stop by process id); a server that was already running is left alone.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
started_pg=0
started_kafka=0

stop_started_infra() {
  if [[ "$started_kafka" == 1 ]]; then bash "$repo_root/deploy/local/kafka.sh" stop || true; fi
  if [[ "$started_pg" == 1 ]]; then bash "$repo_root/deploy/local/postgres.sh" stop || true; fi
}

if [[ -z "${DATABASE_URL:-}" ]]; then
  if ! bash "$repo_root/deploy/local/postgres.sh" status >/dev/null 2>&1; then started_pg=1; fi
  t0=$(date +%s.%N)
  bash "$repo_root/deploy/local/postgres.sh" start
  echo "postgres ready in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N)-$t0}") s"
  DATABASE_URL="$(bash "$repo_root/deploy/local/postgres.sh" url)"
  export DATABASE_URL
fi
if [[ -z "${KAFKA_BROKERS:-}" ]]; then
  if ! bash "$repo_root/deploy/local/kafka.sh" status >/dev/null 2>&1; then started_kafka=1; fi
  t0=$(date +%s.%N)
  bash "$repo_root/deploy/local/kafka.sh" start
  echo "kafka ready in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N)-$t0}") s"
  KAFKA_BROKERS="$(bash "$repo_root/deploy/local/kafka.sh" brokers)"
  export KAFKA_BROKERS
fi
trap stop_started_infra EXIT
