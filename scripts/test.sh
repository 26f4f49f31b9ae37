#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
# lint, formatting, architecture contracts, types, then pytest on PostgreSQL + Redis with the real
# MiniLM model, live Celery workers and the API contract check (schemathesis against gunicorn,
# tests/integration/test_api_contract.py). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$RECSITE_ROOT"

ensure_venv requirements-dev.txt
ensure_postgres
ensure_redis
ensure_chromium

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/recsite}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

say "Lint and format (ruff)"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
say "Architecture contracts (import-linter)"
"$VENV/bin/lint-imports"
say "Types (mypy)"
"$VENV/bin/mypy" recsite accounts jobs recommender tagging churn privacy social experiments tests
# pytest-xdist: one process per core, at most 4 (RECSITE_TEST_WORKERS; 0 runs every test in one
# process), each taking a whole test file at a time, so a file's fixtures are made once. Each
# process has a test database and a folder of its own (recsite/settings/test.py).
cores="$(nproc)"
workers="${RECSITE_TEST_WORKERS:-$((cores < 4 ? cores : 4))}"
parallel=()
if [ "$workers" -gt 0 ]; then
    parallel=(-n "$workers" --dist loadfile)
fi
say "Tests (pytest on $DATABASE_URL, broker $CELERY_BROKER_URL, $workers processes)"
exec "$VENV/bin/pytest" "${parallel[@]}" "$@"
