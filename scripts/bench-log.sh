#!/usr/bin/env bash
# `npm run bench:log`: the decision log's group-commit benchmark on a real Postgres (started
# through deploy/local/ unless DATABASE_URL is set). Arguments go to the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
source scripts/infra-env.sh
node --enable-source-maps dist/scripts/bench-decision-log.js "$@"
