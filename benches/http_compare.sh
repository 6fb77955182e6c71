#!/usr/bin/env bash
# HTTP/1.1 keep-alive hello: examples/http_hello.rs (preempt, Model::Full) against the
# same server on tokio's current-thread runtime (benches/http/tokio_hello.rs), driven by
# wrk. Servers on CPU 0, wrk on CPU 1:
#   * requests/s and p99 latency for `/` alone (wrk -t1 -c50), and the server's CPU time
#     per request (its threads' schedstat): with wrk's core near its limit, a server
#     that needs less CPU per request may not show it in requests/s;
#   * p99 of `/` while a second wrk connection hammers `/spin` (5 ms of CPU per request),
#     under the same saturating load of 50 connections — where `/` alone fills the CPU,
#     so its p99 is mostly the queue of 50 requests (printed beside it: the ratio a server
#     whose `/` the `/spin` handler did not slow would get) — and under a light load of 4
#     connections, where it is the scheduling: how long a woken request handler waits
#     for the CPU the `/spin` handler holds;
# for preempt at the default 1 ms tick and at a 100 µs tick (round-robin at priority 0),
# and at 1 ms with the fair class (Builder::fair). All threads at the default priority.
#
# On a virtual machine the host's speed drifts by ~20 % every few seconds, for tokio and
# preempt alike, so all servers run at once and ROUNDS rounds take every measurement of
# every server in turn, each DURATION long: the table shows medians, and each ratio is
# the median of the ratios within a round (with their range). Short measurements keep
# the two a ratio compares close in time: back-to-back pairs of 1 s gave ratios within
# ±5 % of their median in 18 pairs of 20, where 3 s measurements 3–6 s apart strayed by
# up to 20 %. Host steal time over the run is printed after the table: the hypervisor's
# stalls set a p99 by themselves when they take a percent of the time.
#
#   bash benches/http_compare.sh      # 11 rounds of 1 s measurements (ROUNDS=, DURATION=)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-1}"
ROUNDS="${ROUNDS:-11}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --example http_hello --example tokio_hello
BIN=target/release/examples

NAMES=("tokio current_thread" "preempt Full, 1 ms tick" "preempt Full, 100 us tick" "preempt Full, 1 ms, fair")
CMDS=("$BIN/tokio_hello"
      "$BIN/http_hello --model full --tick-us 1000"
      "$BIN/http_hello --model full --tick-us 100"
      "$BIN/http_hello --model full --tick-us 1000 --fair")
PORT0=18081

pids=()
stop_servers() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_servers EXIT
for i in "${!CMDS[@]}"; do
  port=$((PORT0 + i))
  # shellcheck disable=SC2086
  taskset -c 0 ${CMDS[$i]} --addr "127.0.0.1:$port" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "server on $port did not start" >&2; exit 1; }
done

# CPU time of a server's threads so far, in ns (the scheduler's own account).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }

# wrk's figures: requests/s, p99 in µs, and the server's CPU µs per request.
measure() { # server-pid connections url [hammer-url]
  local out hpid="" pid=$1 conns=$2 cpu0; shift 2
  cpu0=$(cpu_ns "$pid")
  if [ $# -gt 1 ]; then
    # The hammer runs until the measurement is over (its -d is only a bound).
    taskset -c 1 wrk -t1 -c1 -d"$((DURATION + 10))s" "$2" >/dev/null 2>&1 & hpid=$!
    sleep 0.5
  fi
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${DURATION}s" --latency "$1")
  if [ -n "$hpid" ]; then kill "$hpid" 2>/dev/null || true; wait "$hpid" 2>/dev/null || true; fi
  local rps p99 reqs cpu
  cpu=$(($(cpu_ns "$pid") - cpu0))
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000000}}' <<<"$out")
  echo "$rps $p99 $(awk -v c="$cpu" -v n="$reqs" 'BEGIN {printf "%.2f", c / 1000 / n}')"
}

# "steal total" of CPUs 0 and 1 from /proc/stat (the hypervisor's stolen time).
cpu_times() { awk '$1=="cpu0" || $1=="cpu1" {t=0; for (i=2; i<=NF; i++) t+=$i; printf "%s %s ", $9, t}' /proc/stat; }

DATA=$(mktemp)
trap 'stop_servers; rm -f "$DATA"' EXIT
before=$(cpu_times)
# Within a round each stage measures every server back to back, in reverse order on
# even rounds: the host's speed changes every few seconds (by ~20 %, for tokio and
# preempt alike), so the measurements a ratio compares are taken as close together as
# they can be, and a drift favours neither side.
for r in $(seq "$ROUNDS"); do
  echo "round $r of $ROUNDS" >&2
  order=("${!CMDS[@]}")
  if [ $((r % 2)) -eq 0 ]; then
    for ((k = 0; k < ${#order[@]}; k++)); do order[k]=$((${#CMDS[@]} - 1 - k)); done
  fi
  declare -A rps=() p99=() p99s=() p99l=() cpu=()
  for i in "${order[@]}"; do
    read -r "rps[$i]" "p99[$i]" "cpu[$i]" < <(measure "${pids[$i]}" 50 "http://127.0.0.1:$((PORT0 + i))/")
  done
  for i in "${order[@]}"; do
    url="http://127.0.0.1:$((PORT0 + i))"
    read -r _ "p99s[$i]" _ < <(measure "${pids[$i]}" 50 "$url/" "$url/spin")
  done
  for i in "${order[@]}"; do
    url="http://127.0.0.1:$((PORT0 + i))"
    read -r _ "p99l[$i]" _ < <(measure "${pids[$i]}" 4 "$url/" "$url/spin")
  done
  for i in "${!CMDS[@]}"; do
    echo "$r $i ${rps[$i]} ${p99[$i]} ${p99s[$i]} ${p99l[$i]} ${cpu[$i]}" >>"$DATA"
    echo "  ${NAMES[$i]}: ${rps[$i]} req/s (${cpu[$i]} µs CPU each), p99 ${p99[$i]} µs; under /spin ${p99s[$i]} µs (50 c.), ${p99l[$i]} µs (4 c.)" >&2
  done
done
after=$(cpu_times)

printf '%-28s %10s %10s %10s %14s %14s\n' "server (medians)" "req/s (/)" "CPU µs/req" "p99 µs (/)" "+spin, 50 c." "+spin, 4 c."
printf '%-28s %10s %10s %10s %14s %14s\n' "" "" "" "" "p99 µs (/)" "p99 µs (/)"
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
for i in "${!CMDS[@]}"; do
  col() { awk -v i="$i" -v c="$1" '$2==i {print $c}' "$DATA" | median; }
  printf '%-28s %10.0f %10.2f %10.0f %14.0f %14.0f\n' "${NAMES[$i]}" "$(col 3)" "$(col 7)" "$(col 4)" "$(col 5)" "$(col 6)"
done
# Ratios within each round: preempt's req/s and CPU per request over tokio's, tokio's p99
# over preempt's.
for i in $(seq 1 $((${#CMDS[@]} - 1))); do
  ratios() { # tokio's column, this server's column, 1 if higher is better
    awk -v i="$i" -v a="$1" -v b="$2" -v up="$3" '$2==0 {t[$1]=$a} $2==i {p[$1]=$b}
      END {for (r in p) print (up ? p[r]/t[r] : t[r]/p[r])}' "$DATA" | sort -g
  }
  summary() { ratios "$@" | awk '{v[NR]=$1} END {m=(NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.2fx (%.2f-%.2f)", m, v[1], v[NR]}'; }
  # At 50 connections, where `/` alone fills the CPU, the most a server can gain: its
  # p99 under /spin no worse than alone (tokio's p99 under /spin over its p99 alone).
  printf 'ratio vs tokio, %-22s req/s %s, CPU %s per request; p99 under /spin better by %s at 50 connections (unaffected by /spin: %s), %s at 4\n' \
    "${NAMES[$i]#preempt }" "$(summary 3 3 1)" "$(summary 7 7 1)" "$(summary 5 5 0)" "$(summary 5 4 0)" "$(summary 6 6 0)"
done
# shellcheck disable=SC2086
set -- $before $after
awk -v s0="$1" -v t0="$2" -v s1="$3" -v t1="$4" -v S0="$5" -v T0="$6" -v S1="$7" -v T1="$8" \
  'BEGIN {printf "host steal time over the run (the hypervisor ran something else): cpu0 %.1f%%, cpu1 %.1f%%\n", 100*(S0-s0)/(T0-t0), 100*(S1-s1)/(T1-t1)}'
