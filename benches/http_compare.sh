#!/usr/bin/env bash
# HTTP/1.1 keep-alive hello: examples/http_hello.rs (preempt, Model::Full) against the
# same server on tokio's current-thread runtime (benches/http/tokio_hello.rs), driven by
# wrk. Server on CPU 0, wrk on CPU 1, in one run:
#   * requests/s and p99 latency for `/` alone (wrk -t1 -c50);
#   * p99 of `/` while a second wrk connection hammers `/spin` (5 ms of CPU per request),
#     under the same saturating load of 50 connections — where `/` alone fills the CPU,
#     so its p99 is mostly the queue of 50 requests — and under a light load of 4
#     connections, where it is the scheduling: how long a woken request handler waits
#     for the CPU the `/spin` handler holds;
# for preempt at the default 1 ms tick and at a 100 µs tick (round-robin at priority 0),
# and at 1 ms with the fair class (Builder::fair). All threads at the default priority.
# Each row's host steal time is printed after the table: on a virtual machine the
# hypervisor's stalls set the p99 by themselves when they take a percent of the time.
#
#   bash benches/http_compare.sh            # 5 s per measurement (DURATION=10 for longer)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --example http_hello --example tokio_hello
BIN=target/release/examples

server_pid=""
stop_server() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true; server_pid=""; }
trap stop_server EXIT

start() { # port, command...
  local port=$1; shift
  taskset -c 0 "$@" --addr "127.0.0.1:$port" 2>/dev/null &
  server_pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return; sleep 0.05; done
  echo "server on $port did not start" >&2; exit 1
}

# wrk's figures: requests/s and p99 in µs.
measure() { # connections url [hammer-url]
  local out hpid="" conns=$1; shift
  if [ $# -gt 1 ]; then
    taskset -c 1 wrk -t1 -c1 -d"$((DURATION + 2))s" "$2" >/dev/null 2>&1 & hpid=$!
    sleep 0.5
  fi
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${DURATION}s" --latency "$1")
  [ -n "$hpid" ] && wait "$hpid"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000000}}' <<<"$out")
  echo "$rps $p99"
}

# "steal total" per CPU 0 and 1 from /proc/stat (the hypervisor's stolen time).
cpu_times() { awk '$1=="cpu0" || $1=="cpu1" {t=0; for (i=2; i<=NF; i++) t+=$i; printf "%s %s ", $9, t}' /proc/stat; }

row() { # name port command...
  local name=$1 port=$2; shift 2
  local before; before=$(cpu_times)
  start "$port" "$@"
  read -r rps p99 < <(measure 50 "http://127.0.0.1:$port/")
  read -r _ p99s < <(measure 50 "http://127.0.0.1:$port/" "http://127.0.0.1:$port/spin")
  read -r _ p99l < <(measure 4 "http://127.0.0.1:$port/" "http://127.0.0.1:$port/spin")
  stop_server
  printf '%-28s %10.0f %10.0f %14.0f %14.0f\n' "$name" "$rps" "$p99" "$p99s" "$p99l" | tee -a "$RESULTS"
  # shellcheck disable=SC2086
  set -- $before $(cpu_times)
  awk -v n="$name" -v s0="$1" -v t0="$2" -v s1="$3" -v t1="$4" -v S0="$5" -v T0="$6" -v S1="$7" -v T1="$8" \
    'BEGIN {printf "  %-26s cpu0 %.1f%%, cpu1 %.1f%%\n", n, 100*(S0-s0)/(T0-t0), 100*(S1-s1)/(T1-t1)}' >>"$STEAL"
}

RESULTS=$(mktemp)
STEAL=$(mktemp)
printf '%-28s %10s %10s %14s %14s\n' "server" "req/s (/)" "p99 µs (/)" "+spin, 50 c." "+spin, 4 c."
printf '%-28s %10s %10s %14s %14s\n' "" "" "" "p99 µs (/)" "p99 µs (/)"
row "tokio current_thread" 18081 "$BIN/tokio_hello"
row "preempt Full, 1 ms tick" 18082 "$BIN/http_hello" --model full --tick-us 1000
row "preempt Full, 100 us tick" 18083 "$BIN/http_hello" --model full --tick-us 100
row "preempt Full, 1 ms, fair" 18084 "$BIN/http_hello" --model full --tick-us 1000 --fair
awk 'NR==1 {rps=$(NF-3); s50=$(NF-1); s4=$NF}
     NR>1 {printf "ratio vs tokio, %-14s req/s %.2fx; p99 under /spin %.1fx better at 50 connections, %.1fx at 4\n",
                   $2" "$3" "$4" "$5, $(NF-3)/rps, s50/$(NF-1), s4/$NF}' "$RESULTS"
echo "host steal time (the hypervisor ran something else; a stall of a few ms in 1 % of"
echo "the time is a p99 by itself) during each row:"
cat "$STEAL"
rm -f "$RESULTS" "$STEAL"
