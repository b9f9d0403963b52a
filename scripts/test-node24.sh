#!/usr/bin/env bash
# The suite again under Node 24 LTS (scripts/node24.sh makes the binary), on the uWS build for
# it (THOUGHTGATE_UWS_BUILD=modern: fail, never fall back). `node` on PATH is that Node too, so
# servers and CLIs the tests start run on it as well.
set -euo pipefail
cd "$(dirname "$0")/.."
node24=$(bash scripts/node24.sh)
echo "test:node24: $("$node24" -p '`Node ${process.version}`')"
PATH="$(dirname "$node24"):$PATH" THOUGHTGATE_UWS_BUILD=modern exec "$node24" scripts/run-tests.mjs "$@"
