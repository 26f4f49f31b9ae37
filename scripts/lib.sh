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

# Supervising the demo's processes (scripts/demo.sh) ---------------------------------------------
# Each process runs in a session and process group of its own (setsid), so stopping it stops all
# it started too (the Celery worker's embedded beat scheduler, gunicorn's workers), even after it
# died itself: nothing is left behind. Tested by tests/scripts/test_demo_supervisor.py.

# start_group VAR COMMAND...: start COMMAND in a new process group; its pid (the group's id) goes
# into the variable VAR.
start_group() {
  local __var="$1"; shift
  setsid "$@" &
  printf -v "$__var" '%s' "$!"
}

# group_alive PID: whether a process of the group PID leads still runs (zombies do not count).
group_alive() {
  ps -s "$1" -o stat= 2>/dev/null | grep -qv '^Z'
}

# stop_group PID [SECONDS]: SIGTERM every process of the group, SIGKILL what is left after
# SECONDS (default 20), and collect the leader.
stop_group() {
  local pid="$1" grace="${2:-20}" _
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq "$((grace * 10))"); do
    group_alive "$pid" || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# supervise START_WORKER START_WEB: run the worker and the web server, each started by a function
# that calls start_group (worker_pid, web_pid). A worker that stops is restarted (its leftover
# children stopped first); more than RECSITE_WORKER_RESTARTS stops within a minute (default 5)
# end the demo instead. A web server that stops ends the demo: the worker is stopped and this
# returns 1. Ctrl-C or SIGTERM stops both and returns 0.
supervise() {
  local start_worker="$1" start_web="$2" limit="${RECSITE_WORKER_RESTARTS:-5}"
  local stops=() recent=() status=0 now t
  worker_pid="" web_pid=""
  _supervise_stop() {
    [[ -n "$web_pid" ]] && stop_group "$web_pid"
    [[ -n "$worker_pid" ]] && stop_group "$worker_pid"
    web_pid="" worker_pid=""
  }
  trap '_supervise_stop; trap - INT TERM; return 0' INT TERM
  "$start_worker"
  "$start_web"
  while true; do
    # Which one ended is asked of the processes themselves (`kill -0` fails once bash has
    # collected a child): bash's `wait -n -p` can name the wrong one when a process ended
    # before the call.
    if kill -0 "$worker_pid" 2>/dev/null && kill -0 "$web_pid" 2>/dev/null; then
      wait -n "$worker_pid" "$web_pid" 2>/dev/null || true
    fi
    status=0
    if ! kill -0 "$web_pid" 2>/dev/null; then
      wait "$web_pid" 2>/dev/null || status=$?
      say "The web server stopped (exit status $status; see ${WEB_LOG:-its log}); stopping the worker too"
      _supervise_stop  # Its own leftovers (gunicorn's workers, the build watcher) too.
      trap - INT TERM
      return 1
    fi
    if ! kill -0 "$worker_pid" 2>/dev/null; then
      wait "$worker_pid" 2>/dev/null || status=$?
      stop_group "$worker_pid" 5  # What it started (the beat scheduler) goes with it.
      now="$(date +%s)"
      recent=("$now")
      for t in "${stops[@]}"; do
        if (( now - t < 60 )); then recent+=("$t"); fi
      done
      stops=("${recent[@]}")
      if (( ${#stops[@]} > limit )); then
        say "The Celery worker stopped ${#stops[@]} times within a minute (last exit status $status; see ${WORKER_LOG:-its log}); stopping"
        worker_pid=""
        _supervise_stop
        trap - INT TERM
        return 1
      fi
      say "The Celery worker stopped (exit status $status; see ${WORKER_LOG:-its log}); restarting it"
      sleep 1
      "$start_worker"
      continue
    fi
    sleep 0.2  # Both still run (wait was interrupted): look again.
  done
}
