#!/usr/bin/env bash
# make bench: our resolver beside Unbound and PowerDNS Recursor configured
# with the very same list, plus the registry and the matcher, on loopback.
#
# Each server is pinned to core 0 (taskset), the load generator and the
# upstream to core 1. Every figure is the median of RUNS runs; every
# comparison is a ratio measured in the same run.
#
#   SIZES="1000 100000 1000000"  list sizes (default "1000 100000")
#   DURATION=5 RUNS=3            seconds per run, runs per figure
#   QUICK=1                      CI smoke test: one small list, 1 s, 1 run
#   USAGE_ONLY=1                 only our resolver with usage reports on and
#                                off (cached and blocked), not the peers
#   UPSTREAM_PORT=5300           loopback port of the upstream (NSD)
#   RESOLVER="bin/allowlist-resolver"  our resolver's command (before it,
#                                "bin/allowlist resolve": the whole binary)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"1000 100000"}
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
if [ -n "${QUICK:-}" ]; then SIZES=1000; DURATION=1; RUNS=1; fi
# Our resolver is the resolver-only executable, as a department runs it:
# the registry's code (SQLite, the web framework, pages) is not in it.
read -r -a RESOLVER <<< "${RESOLVER:-bin/allowlist-resolver}"

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v unbound >/dev/null || need+=(unbound)
command -v pdns_recursor >/dev/null || need+=(pdns-recursor)
command -v wrk >/dev/null || need+=(wrk)
command -v taskset >/dev/null || need+=(util-linux)
command -v dig >/dev/null || need+=(dnsutils)
[ -x /usr/sbin/nsd ] || need+=(nsd)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
# Stop the packaged services if the install started them: we run our own.
for s in unbound pdns-recursor; do systemctl stop "$s" 2>/dev/null || true; done

make -s build
go build -o bin/bench-upstream ./bench/upstream
go build -o bin/bench-catalogue ./bench/catalogue

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

UP=127.0.0.1:${UPSTREAM_PORT:-5300}; OURS=5401; UNB=5402; PDNS=5403; REG=127.0.0.1:18200
# The upstream every resolver forwards to: NSD, a real authoritative
# server, answering every name under example.net and example.org with
# 192.0.2.1 (a wildcard, TTL 3600). A real server refuses or drops a
# malformed query where a lenient stub would answer it (the forwarded
# figures before run 10 were measured against such a stub, bench/upstream).
# Response-rate limiting is off: the benchmark is one client asking fast.
mkdir -p "$WORK/nsd"
for zone in example.net example.org; do
  printf '$ORIGIN %s.\n$TTL 3600\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 127.0.0.1\n* A 192.0.2.1\n' "$zone" > "$WORK/nsd/$zone.zone"
done
cat > "$WORK/nsd/nsd.conf" <<CONF
server:
    ip-address: ${UP%:*}@${UP#*:}
    port: ${UP#*:}
    username: ""
    chroot: ""
    zonesdir: "$WORK/nsd"
    database: ""
    zonelistfile: "$WORK/nsd/zone.list"
    xfrdfile: "$WORK/nsd/xfrd.state"
    xfrdir: "$WORK/nsd"
    pidfile: "$WORK/nsd/nsd.pid"
    logfile: "$WORK/nsd/nsd.log"
    server-count: 1
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: example.net
    zonefile: example.net.zone
zone:
    name: example.org
    zonefile: example.org.zone
CONF
taskset -c 1 nsd -d -c "$WORK/nsd/nsd.conf" & nsdpid=$!; PIDS+=($nsdpid)
wait_dns() { for _ in $(seq 600); do dig +time=1 +tries=1 @127.0.0.1 -p "$1" "$2" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
if ! wait_dns "${UP#*:}" x.example.net || ! kill -0 $nsdpid 2>/dev/null ||
   [ "$(dig +short +time=1 +tries=1 @127.0.0.1 -p "${UP#*:}" x.example.net A)" != "192.0.2.1" ]; then
  echo "NSD did not start on $UP (is the port taken? set UPSTREAM_PORT):"; cat "$WORK/nsd/nsd.log" 2>/dev/null; exit 1
fi

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
qps() { # server port, query file, extra dnsperf args
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c 4 -q 200 ${3:-} 2>/dev/null | awk '/Queries per second/ {print int($4)}'
}
qps_median() { for _ in $(seq "$RUNS"); do qps "$@"; done | median; }
# latency: p50 and p99 in ms at a fixed 5000 q/s. At least 10 s (50,000
# answers, so the p99 rests on 500 of them): a 3 s run left p99 swapping
# between servers from run to run.
LATENCY_S=$(( DURATION > 10 ? DURATION : 10 ))
if [ -n "${QUICK:-}" ]; then LATENCY_S=$DURATION; fi
latency() { # port, file
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$LATENCY_S" -c 4 -Q 5000 -v 2>/dev/null |
    awk '/^> /{print $NF}' | sort -g | awk '{a[NR]=$1} END{printf "%.3f %.3f", a[int(NR*0.5)]*1000, a[int(NR*0.99)]*1000}'
}
rss_mb() { awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$1/status"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "-" }'; }

if [ -z "${USAGE_ONLY:-}" ]; then
echo "== matcher (go test -bench, medians over -count $RUNS in benchstat-friendly form below)"
go test -run '^$' -bench 'BenchmarkMatcher' -benchmem -count "$RUNS" -benchtime "${DURATION}s" ./allowlist/ 2>/dev/null | grep '^Benchmark' | tee "$WORK/matcher.txt"
fi

RESULTS="$WORK/results.txt"

# propagation: from the sign-off that reaches quorum to our resolver
# answering for the new name (median of 5, milliseconds).
propagation() {
  local dir=$1 size=$2 a b times=()
  a=$(bin/allowlist token create --db "$dir/registry.db" --role owner --department bench-a --name a 2>/dev/null | tail -1)
  b=$(bin/allowlist token create --db "$dir/registry.db" --role owner --department bench-b --name b 2>/dev/null | tail -1)
  for i in 1 2 3 4 5; do
    local id="prop-$i"
    curl -sf -X POST "http://$REG/v1/sites" -H "Authorization: Bearer $a" -H 'Content-Type: application/json' \
      -d "{\"id\":\"$id\",\"name\":\"P\",\"category\":\"other\",\"domains\":[\"$id.example.org\"],\"owner\":{\"name\":\"x\"}}" >/dev/null
    curl -sf -X PUT "http://$REG/v1/sites/$id/signoffs/bench-a" -H "Authorization: Bearer $a" -H 'Content-Type: application/json' -d '{"decision":"approve"}' >/dev/null
    local t0; t0=$(date +%s%N)
    curl -sf -X PUT "http://$REG/v1/sites/$id/signoffs/bench-b" -H "Authorization: Bearer $b" -H 'Content-Type: application/json' -d '{"decision":"approve"}' >/dev/null
    for _ in $(seq 2000); do
      [ "$(dig +short +time=1 +tries=1 @127.0.0.1 -p $OURS $id.example.org A)" = "192.0.2.1" ] && break
    done
    times+=($(( ($(date +%s%N) - t0) / 1000000 )))
  done
  echo "propagation $size $(printf '%s\n' "${times[@]}" | median)" >> "$RESULTS"
}

# reload_under_load: a steady 20,000 queries/s of listed and blocked names
# while RUNS new versions of the list are published and loaded one after
# another; reports the median and the worst reload (as the resolver's
# reload histogram timed each), how the versions came (patch or full), and
# counts the queries that were lost or answered wrongly.
reload_under_load() {
  local dir=$1 size=$2 a b
  [ "$size" = "$(echo $SIZES | tr ' ' '\n' | tail -1)" ] || return 0
  awk -v n="$(( (size + 9) / 10 ))" 'BEGIN { srand(4); for (i = 0; i < 100000; i++) {
      if (i % 2) printf "x.svc1.tool%d.example.net A\n", int(rand() * n); else printf "blocked%d.example.com A\n", i } }' > "$dir/reload.txt"
  a=$(bin/allowlist token create --db "$dir/registry.db" --role owner --department bench-a --name ra 2>/dev/null | tail -1)
  b=$(bin/allowlist token create --db "$dir/registry.db" --role owner --department bench-b --name rb 2>/dev/null | tail -1)
  metric() { curl -s 127.0.0.1:9250/metrics | awk -v m="$1" '$1 == m {print $2}'; }
  local v0; v0=$(metric allowlist_resolver_list_version)
  taskset -c 1 dnsperf -s 127.0.0.1 -p $OURS -d "$dir/reload.txt" -l $(( 4 + RUNS * (2 + size / 100000) )) -c 4 -Q 20000 -t 2 > "$dir/reload.out" 2>&1 & local perf=$!
  sleep 2
  local times=() r
  for r in $(seq "$RUNS"); do
    local id="reload-$r" v s0 c0
    curl -sf -X POST "http://$REG/v1/sites" -H "Authorization: Bearer $a" -H 'Content-Type: application/json' \
      -d "{\"id\":\"$id\",\"name\":\"R\",\"category\":\"other\",\"domains\":[\"$id.example.org\"],\"owner\":{\"name\":\"x\"}}" >/dev/null
    curl -sf -X PUT "http://$REG/v1/sites/$id/signoffs/bench-a" -H "Authorization: Bearer $a" -H 'Content-Type: application/json' -d '{"decision":"approve"}' >/dev/null
    v=$(metric allowlist_resolver_list_version); s0=$(metric allowlist_resolver_reload_duration_seconds_sum); c0=$(metric allowlist_resolver_reload_duration_seconds_count)
    curl -sf -X PUT "http://$REG/v1/sites/$id/signoffs/bench-b" -H "Authorization: Bearer $b" -H 'Content-Type: application/json' -d '{"decision":"approve"}' >/dev/null
    for _ in $(seq 600); do [ "$(metric allowlist_resolver_list_version)" != "$v" ] && break; sleep 0.1; done
    times+=("$(curl -s 127.0.0.1:9250/metrics | awk -v s0="$s0" -v c0="$c0" '$1 == "allowlist_resolver_reload_duration_seconds_sum" {s=$2} $1 == "allowlist_resolver_reload_duration_seconds_count" {c=$2} END {if (c > c0) printf "%.2f", (s - s0) / (c - c0); else print "?"}')")
  done
  wait $perf || true
  local v1 sent lost noerr nx how
  v1=$(metric allowlist_resolver_list_version)
  how=$(curl -s 127.0.0.1:9250/metrics | awk -F'[{}"]' '/^allowlist_resolver_list_updates_total/ {printf "%s%s=%s", sep, $3, $5+0; sep=","}' | tr -d ' ')
  sent=$(awk '/Queries sent/ {print $3}' "$dir/reload.out")
  lost=$(awk '/Queries lost/ {print $3}' "$dir/reload.out")
  read -r noerr nx < <(awk '/Response codes/ { for (i = 1; i <= NF; i++) { if ($i == "NOERROR") n = $(i+1); if ($i == "NXDOMAIN") x = $(i+1) } } END { print n+0, x+0 }' "$dir/reload.out")
  echo "reload $size $v0 $v1 ${sent:-0} ${lost:-0} $(( ${sent:-0} - ${lost:-0} - ${noerr:-0} - ${nx:-0} )) $(printf '%s\n' "${times[@]}" | median) $(printf '%s\n' "${times[@]}" | sort -g | tail -1) ${how:-?} ${times[*]}" >> "$RESULTS"
}
# usage_on_off: our resolver twice, on core 0, the same list, one with
# usage reports on (report: every 15m, k 5; no report is due during the
# run) and one without, measured in turns (off, on, off, on, ...) so that
# both see the same machine: cached and blocked queries/s, medians of
# RUNS turns. The blocked file's 20,000 names fall under one registrable
# domain (example.com), each counted; dnsperf asks from one address.
usage_on_off() {
  local dir=$1 size=$2 tok on off r
  tok=$(bin/allowlist token create --db "$dir/registry.db" --role reader --name "usage-$size" 2>/dev/null | tail -1)
  sed -e "s/^listen: .*/listen: 127.0.0.1:5405/" -e "s/^metrics_listen: .*/metrics_listen: 127.0.0.1:9251/" "$dir/resolver.yaml" > "$dir/off.yaml"
  sed -e "s/^listen: .*/listen: 127.0.0.1:5406/" -e "s/^metrics_listen: .*/metrics_listen: 127.0.0.1:9252/" -e "s|^cache_dir: .*|cache_dir: $dir/cache-on|" "$dir/resolver.yaml" > "$dir/on.yaml"
  printf 'token: %s\nreport:\n  every: 15m\n  k: 5\n  department: bench-a\n' "$tok" >> "$dir/on.yaml"
  sed -i "s|^cache_dir: .*|cache_dir: $dir/cache-off|" "$dir/off.yaml"
  taskset -c 0 "${RESOLVER[@]}" --config "$dir/off.yaml" >/dev/null 2>&1 & off=$!; PIDS+=($off)
  taskset -c 0 "${RESOLVER[@]}" --config "$dir/on.yaml" >/dev/null 2>&1 & on=$!; PIDS+=($on)
  for port in 5405 5406; do
    for _ in $(seq 1200); do
      [ "$(dig +short +time=1 +tries=1 @127.0.0.1 -p $port x.svc1.tool0.example.net A 2>/dev/null)" = "192.0.2.1" ] && break; sleep 0.05
    done
    qps $port "$dir/allowed.txt" >/dev/null # warm the cache
  done
  # qps_cpu: queries/s, and the server's CPU time per answered query in
  # microseconds (user + system, from /proc: what the work costs, whatever
  # share of the core the shared machine gave it).
  qps_cpu() { # port, file, pid
    local t0 t1 out
    t0=$(awk '{print $14 + $15}' "/proc/$3/stat")
    out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c 4 -q 200 2>/dev/null)
    t1=$(awk '{print $14 + $15}' "/proc/$3/stat")
    echo "$out" | awk -v d="$(( t1 - t0 ))" -v hz="$(getconf CLK_TCK)" '/Queries completed/ {n = $3} /Queries per second/ {q = int($4)}
      END {printf "%d %.3f", q, (n > 0 ? d / hz / n * 1e6 : 0)}'
  }
  # Turns alternate which goes first, so that a drift in the machine's
  # load does not favour one side.
  for r in $(seq "$RUNS"); do
    for f in allowed blocked; do
      for side in $([ $((r % 2)) = 1 ] && echo off on || echo on off); do
        if [ $side = off ]; then echo "usage $size off $f $(qps_cpu 5405 "$dir/$f.txt" $off)"
        else echo "usage $size on $f $(qps_cpu 5406 "$dir/$f.txt" $on)"; fi >> "$RESULTS"
      done
    done
  done
  curl -s 127.0.0.1:9252/metrics | awk -v s="$size" '$1 == "allowlist_resolver_usage_domains_untracked_total" {u = $2}
    $1 == "go_memstats_heap_alloc_bytes" {h = $2} END {printf "usagemem %s untracked=%d heap_alloc_MB=%d\n", s, u, h/1048576}' >> "$RESULTS"
  kill $off $on; wait $off $on 2>/dev/null || true
}

# The floor: a plain miekg/dns server answering everything locally, no
# policy, on the same core.
PLAIN=-
if [ -z "${USAGE_ONLY:-}" ]; then
taskset -c 0 bin/bench-upstream -listen 127.0.0.1:5404 >/dev/null & plain=$!; PIDS+=($plain)
wait_dns 5404 x.example.net || true
awk 'BEGIN { for (i = 0; i < 20000; i++) printf "x%d.example.net A\n", i }' > "$WORK/plain.txt"
PLAIN=$(qps_median 5404 "$WORK/plain.txt")
kill $plain; wait $plain 2>/dev/null || true
fi
for size in $SIZES; do
  dir="$WORK/$size"; mkdir -p "$dir"
  bin/bench-catalogue -entries "$size" > "$dir/cat.yaml"
  bin/allowlist import "$dir/cat.yaml" --db "$dir/registry.db" >/dev/null
  taskset -c 1 bin/allowlist serve --db "$dir/registry.db" --listen $REG --log-level error >/dev/null 2>&1 & regpid=$!; PIDS+=($regpid)
  for _ in $(seq 300); do curl -sf "http://$REG/readyz" >/dev/null && break; sleep 0.2; done
  curl -sf "http://$REG/v1/lists/common?format=unbound" > "$dir/list.unbound"
  { echo "\$ORIGIN allowlist.rpz."; curl -sf "http://$REG/v1/lists/common?format=rpz"; echo "* CNAME ."; } > "$dir/list.rpz"
  sites=$(( (size + 9) / 10 ))
  awk -v n="$sites" 'BEGIN { srand(1); for (i = 0; i < 20000; i++) printf "x.svc1.tool%d.example.net A\n", int(rand() * n) }' > "$dir/allowed.txt"
  awk 'BEGIN { for (i = 0; i < 20000; i++) printf "blocked%d.example.com A\n", i }' > "$dir/blocked.txt"
  # Names never asked before, a new file for each run and server (dnsperf
  # starts a file from the top, so reusing one would measure the cache).
  fresh_files() { for r in $(seq "$RUNS"); do
      awk -v n="$sites" -v r="$r" -v s="$1" 'BEGIN { srand(2 + r); for (i = 0; i < 2000000; i++) printf "u%d-%s%d.svc1.tool%d.example.net A\n", i, s, r, int(rand() * n) }' > "$dir/fresh-$r.txt"; done; }
  awk -v n="$sites" 'BEGIN { srand(3); for (i = 0; i < 20000; i++) { r = rand();
      if (r < 0.6) printf "x.svc1.tool%d.example.net A\n", int(rand() * n);
      else if (r < 0.9) printf "blocked%d.example.com A\n", i;
      else printf "m%d.svc2.tool%d.example.net A\n", i, int(rand() * n) } }' > "$dir/mix.txt"

  # Ours
  cat > "$dir/resolver.yaml" <<YAML
listen: 127.0.0.1:$OURS
registry: http://$REG
scope: common
public_key: "$(bin/allowlist keygen --db "$dir/registry.db")"
cache_dir: $dir/cache
mode: enforce
upstreams: ["$UP"]
metrics_listen: 127.0.0.1:9250
cache_size: 2000000
log_level: error
YAML
  # Unbound with the same list, forwarding to the same upstream
  cat > "$dir/unbound.conf" <<CONF
server:
    interface: 127.0.0.1@$UNB
    num-threads: 1
    do-daemonize: no
    chroot: ""
    username: ""
    directory: "$dir"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    # Unbound's default caches (msg-cache-size 4m, rrset-cache-size 4m):
    # the same 8 MiB budget as our default cache_bytes.
    local-zone: "." always_nxdomain
include: "$dir/list.unbound"
forward-zone:
    name: "."
    forward-addr: ${UP%:*}@${UP#*:}
CONF
  # PowerDNS Recursor with the same list as an RPZ (listed names pass, the rest NXDOMAIN)
  echo "rpzFile(\"$dir/list.rpz\", {policyName=\"allowlist\"})" > "$dir/pdns.lua"
  cat > "$dir/recursor.conf" <<CONF
local-address=127.0.0.1
local-port=$PDNS
threads=1
pdns-distributes-queries=no
forward-zones-recurse=.=$UP
dnssec=off
lua-config-file=$dir/pdns.lua
daemon=no
socket-dir=$dir
quiet=yes
loglevel=0
allow-from=127.0.0.0/8
max-cache-entries=4000000
CONF

  for server in $([ -n "${USAGE_ONLY:-}" ] || echo ours unbound pdns); do
    start=$(date +%s.%N)
    case $server in
      ours)    taskset -c 0 "${RESOLVER[@]}" --config "$dir/resolver.yaml" >/dev/null 2>&1 & pid=$!; port=$OURS ;;
      unbound) taskset -c 0 unbound -d -c "$dir/unbound.conf" >/dev/null 2>&1 & pid=$!; port=$UNB ;;
      pdns)    taskset -c 0 pdns_recursor --config-dir="$dir" >/dev/null 2>&1 & pid=$!; port=$PDNS ;;
    esac
    PIDS+=($pid)
    # Loaded when a listed name resolves (a blocked one answers before).
    if ! for _ in $(seq 1200); do
        [ "$(dig +short +time=1 +tries=1 @127.0.0.1 -p $port x.svc1.tool0.example.net A 2>/dev/null)" = "192.0.2.1" ] && break; sleep 0.05; done; then :; fi
    if [ "$(dig +short +time=1 +tries=1 @127.0.0.1 -p $port x.svc1.tool0.example.net A 2>/dev/null)" != "192.0.2.1" ]; then
      echo "$size $server failed to start" | tee -a "$RESULTS"; kill $pid 2>/dev/null || true; continue
    fi
    load=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
    sleep 1
    rss_loaded=$(rss_mb $pid)
    echo "peak $size $server $(awk '/VmHWM/ {printf "%d", $2/1024}' "/proc/$pid/status") $rss_loaded" >> "$RESULTS"
    qps "$port" "$dir/allowed.txt" >/dev/null # warm the cache
    # Latency first, on a settled server, before the runs that fill the
    # caches with millions of names (the same order for every server).
    lat=$(latency "$port" "$dir/allowed.txt")
    cached=$(qps_median "$port" "$dir/allowed.txt")
    blocked=$(qps_median "$port" "$dir/blocked.txt")
    fresh_files "$server"
    fresh=$(for r in $(seq "$RUNS"); do qps "$port" "$dir/fresh-$r.txt" "-n 1"; done | median)
    mix=$(qps_median "$port" "$dir/mix.txt")
    rss=$(rss_mb $pid)
    echo "$size $server $cached $blocked $fresh $mix $lat $rss_loaded $rss $load" >> "$RESULTS"
    if [ $server = ours ]; then
      # Cache misses the fast path could not finish itself (a malformed
      # upstream query shows here), and what the answer cache holds.
      curl -s 127.0.0.1:9250/metrics | awk -v s="$size" '/^allowlist_resolver_forward_fallbacks_total/ {f = f " " $1 "=" $2}
        $1 == "allowlist_resolver_cache_bytes" {b = $2} $1 == "allowlist_resolver_cache_entries" {e = $2}
        $1 == "go_memstats_heap_alloc_bytes" {h = $2} $1 == "go_memstats_heap_sys_bytes" {y = $2} $1 == "go_memstats_heap_released_bytes" {r = $2}
        $1 == "go_memstats_heap_inuse_bytes" {u = $2} $1 == "go_memstats_stack_inuse_bytes" {k = $2} $1 == "go_memstats_next_gc_bytes" {n = $2} $1 == "go_goroutines" {g = $2}
        $1 == "go_memstats_sys_bytes" {t = $2}
        END {printf "fallbacks %s cache_bytes=%d cache_entries=%d heap_alloc_MB=%.1f heap_inuse_MB=%.1f heap_sys_MB=%.1f heap_released_MB=%.1f next_gc_MB=%.1f stack_MB=%.1f go_sys_MB=%.1f goroutines=%d%s\n", s, b, e, h/1048576, u/1048576, y/1048576, r/1048576, n/1048576, k/1048576, t/1048576, g, (f == "" ? " none" : f)}' >> "$RESULTS"
    fi
    if [ $server = ours ]; then propagation "$dir" "$size"; reload_under_load "$dir" "$size"; fi
    kill $pid; wait $pid 2>/dev/null || true
  done

  usage_on_off "$dir" "$size"
  if [ -n "${USAGE_ONLY:-}" ]; then kill $regpid; wait $regpid 2>/dev/null || true; continue; fi

  # Registry, now on core 0 alone: a check, a 304 poll, then full lists
  # (last: the server is still sending large bodies for a while after).
  taskset -p -c 0 $regpid >/dev/null
  etag=$(curl -s -D - -o /dev/null "http://$REG/v1/lists/common" | awk -F': ' 'tolower($1)=="etag" {print $2}' | tr -d '\r')
  check=$(taskset -c 1 wrk -t1 -c16 -d"${DURATION}s" "http://$REG/v1/check?domain=x.svc1.tool1.example.net" | awk '/Requests\/sec/ {print int($2)}')
  poll=$(taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" -H "If-None-Match: $etag" "http://$REG/v1/lists/common" | awk '/Requests\/sec/ {print int($2)}')
  full=$(taskset -c 1 wrk -t1 -c16 -d"${DURATION}s" "http://$REG/v1/lists/common" | awk '/Requests\/sec/ {print int($2)}')
  echo "registry $size $full $poll $check" >> "$RESULTS"
  kill $regpid; wait $regpid 2>/dev/null || true
done

echo
echo "== usage reports: our resolver with report: on and off, same run, in turns (median of $RUNS x ${DURATION}s)"
echo "   q/s, and the resolver's CPU time per query (us, user + system; the cost itself, less swayed by the machine's load)"
echo "   on/off: the median of each turn's ratio (the turn's two runs are seconds apart, so they share the machine's load)"
printf "%-8s %-8s %9s %9s %7s %8s %8s %7s   %s\n" entries query "q/s off" "q/s on" on/off "cpu off" "cpu on" on/off "each turn's ratios, q/s and cpu"
for size in $SIZES; do
  for f in allowed blocked; do
    awk -v s="$size" -v f="$f" '$1 == "usage" && $2 == s && $4 == f { if ($3 == "off") { off[++n] = $5; coff[n] = $6 } else { on[++m] = $5; con[m] = $6 } }
      function med(a, k,   i, j, t, b) { for (i = 1; i <= k; i++) b[i] = a[i]; for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (b[j] < b[i]) { t = b[i]; b[i] = b[j]; b[j] = t } return b[int((k + 1) / 2)] }
      END { if (n == 0 || n != m) exit; line = ""
        for (i = 1; i <= n; i++) { rq[i] = (off[i] > 0 ? on[i] / off[i] : 0); rc[i] = (coff[i] > 0 ? con[i] / coff[i] : 0); line = line sprintf(" %.2f/%.2f", rq[i], rc[i]) }
        printf "%-8s %-8s %9d %9d %7.3f %8.3f %8.3f %7.3f  %s\n", s, (f == "allowed" ? "cached" : f), med(off, n), med(on, n), med(rq, n), med(coff, n), med(con, n), med(rc, n), line }' "$RESULTS"
  done
done
awk '$1 == "usagemem" { $1 = ""; print "  reporting resolver at the end:" $0 }' "$RESULTS"
[ -n "${USAGE_ONLY:-}" ] && exit 0
echo
echo "== resolvers: queries/s (median of $RUNS x ${DURATION}s), latency at 5k q/s, RSS once loaded and after the runs, time to answer a listed name"
echo "ours: ${RESOLVER[*]}; plain miekg/dns server (no policy, answers everything): $PLAIN q/s"
printf "%-8s %-8s %9s %9s %9s %9s %8s %8s %8s %8s %6s\n" entries server cached blocked forwarded mix p50ms p99ms rssMB rssAfter loadS
awk '$1 ~ /^[0-9]+$/ && NF == 11 { printf "%-8s %-8s %9s %9s %9s %9s %8s %8s %8s %8s %6s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }' "$RESULTS"
echo
echo "== ratios, ours / peer, in the same run"
for size in $SIZES; do
  ours=$(awk -v s="$size" '$1 == s && $2 == "ours"' "$RESULTS")
  for peer in unbound pdns; do
    p=$(awk -v s="$size" -v n="$peer" '$1 == s && $2 == n' "$RESULTS")
    [ -n "$ours" ] && [ -n "$p" ] && [ "$(echo "$p" | wc -w)" -eq 11 ] || continue
    set -- $ours; o=("$@"); set -- $p; q=("$@")
    echo "$size vs $peer: cached $(ratio "${o[2]}" "${q[2]}")x  blocked $(ratio "${o[3]}" "${q[3]}")x  forwarded $(ratio "${o[4]}" "${q[4]}")x  mix $(ratio "${o[5]}" "${q[5]}")x  p99 $(ratio "${o[7]}" "${q[7]}")x  RSS loaded $(ratio "${o[8]}" "${q[8]}")x"
  done
  [ -n "$ours" ] && { set -- $ours; echo "$size vs plain miekg/dns: cached $(ratio "$3" "$PLAIN")x  blocked $(ratio "$4" "$PLAIN")x"; }
done
echo
echo "== our fast path's fallbacks to the ordinary path over the whole run, and the answer cache at the end"
awk '$1 == "fallbacks" { $1 = ""; print }' "$RESULTS"
echo
echo "== memory while loading: peak RSS (VmHWM) during start-up and load vs RSS one second after, MB"
awk '$1 == "peak" { printf "%-8s %-8s peak %5s  steady %5s  ratio %.2f\n", $2, $3, $4, $5, ($5 > 0 ? $4 / $5 : 0) }' "$RESULTS"
echo
echo "== propagation: sign-off reaching quorum -> our resolver answering (median of 5, ms)"
awk '$1 == "propagation" { printf "%-8s %6s ms\n", $2, $3 }' "$RESULTS"
echo
echo "== reload under load (20k q/s while $RUNS new versions of the largest list load, one after another)"
awk '$1 == "reload" { each = $11; for (i = 12; i <= NF; i++) each = each " " $i
  printf "entries %s: version %s -> %s, %s queries sent, %s lost, %s other failures; reload median %s s, worst %s s (each: %s); versions taken since start: %s\n", $2, $3, $4, $5, $6, $7, $8, $9, each, $10 }' "$RESULTS"
echo
echo "== registry (wrk, ${DURATION}s): requests/s"
printf "%-8s %12s %12s %8s\n" entries "full list" "304 poll" check
awk '$1 == "registry" { printf "%-8s %12s %12s %8s\n", $2, $3, $4, $5 }' "$RESULTS"
echo
# The registry's stores and instances: sign-offs per second and p99 with 8
# writers on two instances of one database (SQLite, PostgreSQL with the
# advisory lock it uses, and at SERIALIZABLE with retries, same run); the
# quorum sign-off on one instance to another instance's listener; and
# 10,000 watches waiting on one instance, woken by one quorum. The
# PostgreSQL ones start a server of their own (Debian's postgresql-15).
echo "== registry stores and instances (go test -bench; PostgreSQL 15 started by the benchmark)"
STORE_N=$([ -n "${QUICK:-}" ] && echo 40 || echo 400)
go test -run '^$' -bench 'BenchmarkWriters|BenchmarkQuorumToOtherInstance' -benchtime "${STORE_N}x" -count "$RUNS" ./allowlist/postgres/ 2>&1 | grep '^Benchmark'
WATCHERS=$([ -n "${QUICK:-}" ] && echo 1000 || echo 10000) \
  go test -run '^$' -bench 'BenchmarkWatchers' -benchtime 1x -count "$RUNS" ./api/ 2>&1 | grep '^Benchmark'
