#!/usr/bin/env bash
# Stops the local Kafka broker and Postgres cluster (idempotent). Data in .local/
# is kept; delete .local/pg or .local/kafka/data for a fresh start.
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"

rc=0
"$DIR/kafka.sh" stop || rc=1
"$DIR/postgres.sh" stop || rc=1
exit "$rc"
