#!/usr/bin/env bash
# `npm test`: builds the processes the end-to-end tests start, brings up Postgres and Kafka
# (unless DATABASE_URL / KAFKA_BROKERS point elsewhere), installs Debian's chromium for the
# browser test when it is missing, and runs every test tier.
# Extra arguments go to Vitest, e.g. `npm test -- --project unit`. The output is kept in
# .local/test-output.log; when fault tests ran, their per-run timings end it as a table.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
bash scripts/ensure-chromium.sh
source scripts/infra-env.sh
mkdir -p .local
status=0
npx vitest run "$@" 2>&1 | tee .local/test-output.log || status=$?
if grep -q 'FAULT .* run=' .local/test-output.log; then
  echo
  echo "Fault runs, timed from the kill:"
  npx tsx scripts/fault-table.ts .local/test-output.log
fi
exit "$status"
