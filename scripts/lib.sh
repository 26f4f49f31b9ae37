# Shared helpers for scripts/demo.sh and scripts/test.sh. Sourced, not run.

RECSITE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$RECSITE_ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

find_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  die "Python 3.11 or newer is required (python3 --version says: $(python3 --version 2>&1))"
}

# Create .venv and install the pinned requirements; reinstall only when they changed.
ensure_venv() {
  local requirements="$1" stamp="$VENV/.installed-requirements"
  local wanted
  wanted="$(cat "$RECSITE_ROOT/requirements.txt" "$RECSITE_ROOT/$requirements" | sha256sum | cut -d' ' -f1)"
  if [[ -x "$PY" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    return 0
  fi
  if [[ ! -x "$PY" ]]; then
    say "Creating the virtual environment in .venv"
    "$(find_python)" -m venv "$VENV"
  fi
  say "Installing pinned requirements ($requirements); the first time takes a few minutes"
  "$PY" -m pip install --quiet --upgrade pip
  "$PY" -m pip install --quiet -r "$RECSITE_ROOT/$requirements"
  echo "$wanted" >"$stamp"
}

# Start PostgreSQL and Redis when they are installed here but not running.
ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  command -v pg_ctlcluster >/dev/null 2>&1 || die "PostgreSQL is not running on 127.0.0.1:5432 and pg_ctlcluster is not installed; start it or set DATABASE_URL"
  say "Starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 1; done
  die "PostgreSQL did not become ready on 127.0.0.1:5432"
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  command -v redis-server >/dev/null 2>&1 || die "Redis is not running on 127.0.0.1:6379 and redis-server is not installed; start it or set CELERY_BROKER_URL"
  say "Starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0; sleep 1; done
  die "Redis did not become ready on 127.0.0.1:6379"
}

# The browser tests drive Debian's Chromium; install it when it is missing (root only).
ensure_chromium() {
  local chromium="${RECSITE_CHROMIUM:-/usr/bin/chromium}"
  if [[ -x "$chromium" ]]; then return 0; fi
  command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] ||
    die "Chromium is not at $chromium and cannot be installed here; install Debian's chromium package or set RECSITE_CHROMIUM"
  say "Installing Chromium (Debian package) for the browser tests"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}
