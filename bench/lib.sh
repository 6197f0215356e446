# Shared by bench/run.sh, bench/protocols.sh and bench/soak.sh, sourced from the repository root.
# bench_init NAME sets up $work (a temp dir) and pids=() (the processes started, all killed by PID
# and the temp dir removed on exit); the rest are small helpers.

bench_init() {  # bench_init NAME
  work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}

# need TOOL...: exits unless every TOOL is on PATH.
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found (scripts/setup.sh installs it)" >&2; exit 1; }
  done
}

# legate_binary: builds Legate unless LEGATE_BIN is set, then checks $LEGATE exists.
legate_binary() {
  if [ -z "${LEGATE_BIN:-}" ]; then
    cargo build --release -p legate >/dev/null 2>&1 || cargo build --release -p legate
  fi
  [ -x "$LEGATE" ] || { echo "bench: Legate not found at $LEGATE" >&2; exit 1; }
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }   # utime+stime (comm has no spaces here)
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }       # utime alone (stime = total - utime)
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
forget_pid() { local p keep=(); for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; pids=("${keep[@]}"); }

# wait_http URL PID NAME: poll until URL answers 2xx, failing if PID dies or 10 s pass
# (NAME's output is in $work/NAME.log).
wait_http() {
  local i
  for i in $(seq 200); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "bench: $3 exited during startup; log:" >&2; cat "$work/$3.log" >&2; exit 1; }
    sleep 0.05
  done
  echo "bench: $3 not ready after 10 s ($1); log:" >&2; cat "$work/$3.log" >&2; exit 1
}
