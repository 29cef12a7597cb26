#!/usr/bin/env bash
# `npm test`: builds the processes the end-to-end tests start, brings up Postgres and Kafka
# (unless DATABASE_URL / KAFKA_BROKERS point elsewhere), installs Debian's chromium for the
# browser test when it is missing, and runs every test tier.
# Extra arguments go to Vitest, e.g. `npm test -- --project unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
bash scripts/ensure-chromium.sh
source scripts/infra-env.sh
npx vitest run "$@"
