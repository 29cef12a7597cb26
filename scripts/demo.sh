#!/usr/bin/env bash
# `npm run demo`: builds, brings up Postgres and Kafka (unless DATABASE_URL / KAFKA_BROKERS
# are set), then runs the coordinator, the three example services and a checkout workload.
# `npm run demo -- --once` exits after the summary (non-zero if the conservation check fails).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
source scripts/infra-env.sh
node --enable-source-maps dist/scripts/demo.js "$@"
