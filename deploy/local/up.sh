#!/usr/bin/env bash
# Starts the local Postgres cluster and Kafka broker (both idempotent) and prints
# the export lines for the app and the tests on stdout:
#
#   eval "$(deploy/local/up.sh)"
#
# Progress messages go to stderr. Honors DATABASE_URL / KAFKA_BROKERS (external
# services: the matching local service is not started) and the env vars of
# postgres.sh / kafka.sh.
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"

"$DIR/postgres.sh" start
"$DIR/kafka.sh" start

printf "export DATABASE_URL='%s'\n" "$("$DIR/postgres.sh" url)"
printf "export KAFKA_BROKERS='%s'\n" "$("$DIR/kafka.sh" brokers)"
