#!/usr/bin/env bash
# make bench, zone transfer: the registry serves the common scope as an RPZ
# zone by AXFR/IXFR with TSIG and NOTIFY; BIND (secondary + response-policy),
# Unbound (rpz: primary:) and PowerDNS Recursor (rpzPrimary, refresh=1)
# follow it, each with a catch-all zone after ours, forwarding allowed names
# to a local upstream. For each list size it reports:
#   - the time from the sign-off that reaches quorum to each server
#     resolving the newly allowed name (median of ROUNDS, ms);
#   - AXFR of the whole zone from the registry, beside the same AXFR from
#     the BIND secondary holding it (time, bytes), and the registry's peak
#     memory while serving it (VmHWM reset just before);
#   - IXFR bytes for one change, from the registry and from BIND's journal.
#
#   SIZES="1000 100000 1000000"   list sizes (default "1000 100000")
#   ROUNDS=5                      propagation rounds per size
#   QUICK=1                       CI smoke test: 1000 entries, 2 rounds
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"1000 100000"}
ROUNDS=${ROUNDS:-5}
if [ -n "${QUICK:-}" ]; then SIZES=1000; ROUNDS=2; fi

need=()
command -v named >/dev/null || [ -x /usr/sbin/named ] || need+=(bind9)
command -v unbound >/dev/null || need+=(unbound)
command -v pdns_recursor >/dev/null || need+=(pdns-recursor)
command -v dig >/dev/null || need+=(bind9-dnsutils)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
PATH=$PATH:/usr/sbin
for s in named bind9 unbound pdns-recursor; do systemctl stop "$s" 2>/dev/null || true; done

make -s build
go build -o bin/bench-upstream ./bench/upstream
go build -o bin/bench-catalogue ./bench/catalogue
go build -o bin/bench-zoneprop ./bench/zoneprop

WORK=$(mktemp -d)
[ -z "${KEEP:-}" ] || echo "work dir: $WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

UP=15510; ZONE=15501; BIND=15502; UNB=15503; PDNS=15504; REG=127.0.0.1:18300
bin/bench-upstream -listen 127.0.0.1:$UP >/dev/null & PIDS+=($!)
RESULTS="$WORK/results.txt"
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
listed() { [ "$(dig +short +time=1 +tries=1 @127.0.0.1 -p "$1" x.svc1.tool0.example.net A 2>/dev/null)" = "192.0.2.1" ]; }
xfr_stats() { # server port, type (AXFR or IXFR=N): "ms bytes records"
  local t0 out; t0=$(date +%s%N)
  out=$(dig -y "hmac-sha256:$KEY" @127.0.0.1 -p "$1" common.rpz.allowlist "$2" +noall +stats 2>&1)
  echo "$(ms_since "$t0") $(echo "$out" | awk '/XFR size/ { gsub(/[(),]/, " "); for (i = 1; i <= NF; i++) { if ($i == "bytes") b = $(i+1); if ($i == "size:") r = $(i+1) } } END { print b+0, r+0 }')"
}

for size in $SIZES; do
  dir="$WORK/$size"; mkdir -p "$dir"
  bin/bench-catalogue -entries "$size" > "$dir/cat.yaml"
  bin/allowlist import "$dir/cat.yaml" --db "$dir/registry.db" >/dev/null
  A=$(bin/allowlist token create --db "$dir/registry.db" --role owner --department bench-a --name a 2>/dev/null | tail -1)
  B=$(bin/allowlist token create --db "$dir/registry.db" --role owner --department bench-b --name b 2>/dev/null | tail -1)
  KEY=$(bin/allowlist tsig create --db "$dir/registry.db" --name bench-xfr 2>/dev/null | tail -1)
  SECRET=${KEY#*:}
  cat > "$dir/registry.yaml" <<YAML
listen: $REG
db: $dir/registry.db
log_level: info
dns_listen: 127.0.0.1:$ZONE
notify:
  - {target: 127.0.0.1:$BIND, scopes: [common]}
  - {target: 127.0.0.1:$UNB, scopes: [common]}
xfr_unsigned_from: [127.0.0.1/32]
YAML
  bin/allowlist serve --config "$dir/registry.yaml" >/dev/null 2>"$dir/registry.log" & regpid=$!; PIDS+=($regpid)
  for _ in $(seq 600); do curl -sf "http://$REG/readyz" >/dev/null && break; sleep 0.2; done
  # Let the caches warm (as a running registry's are), then time a whole
  # AXFR with the peak-RSS counter reset just before it.
  curl -sf "http://$REG/v1/lists/common" -o /dev/null; sleep 1
  rss_before=$(awk '/VmRSS/ {printf "%d", $2/1024}' /proc/$regpid/status)
  echo 5 > /proc/$regpid/clear_refs
  read -r ax_ms ax_bytes ax_records < <(xfr_stats $ZONE AXFR)
  peak=$(awk '/VmHWM/ {printf "%d", $2/1024}' /proc/$regpid/status)
  read -r ax2_ms _ _ < <(xfr_stats $ZONE AXFR) # the zone built, as for a second secondary
  echo "axfr $size $ax_ms $ax2_ms $ax_bytes $ax_records $rss_before $peak" >> "$RESULTS"

  printf '$TTL 60\n@ SOA localhost. h.localhost. 1 60 60 600 60\n@ NS localhost.\n* CNAME .\n' > "$dir/catchall.zone"
  cat > "$dir/named.conf" <<CONF
key "bench-xfr" { algorithm hmac-sha256; secret "$SECRET"; };
options {
  directory "$dir"; pid-file "$dir/named.pid";
  listen-on port $BIND { 127.0.0.1; }; listen-on-v6 { none; };
  recursion yes; allow-recursion { 127.0.0.0/8; }; dnssec-validation no;
  forward only; forwarders { 127.0.0.1 port $UP; };
  allow-transfer { key "bench-xfr"; };
  response-policy { zone "common.rpz.allowlist"; zone "catchall"; } min-update-interval 0;
};
controls { };
zone "common.rpz.allowlist" { type secondary; primaries { 127.0.0.1 port $ZONE key "bench-xfr"; }; file "common.rpz.db"; };
zone "catchall" { type primary; file "catchall.zone"; };
CONF
  cat > "$dir/unbound.conf" <<CONF
server:
  interface: 127.0.0.1@$UNB
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$dir"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  module-config: "respip iterator"
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$UP
rpz:
  name: "common.rpz.allowlist."
  primary: 127.0.0.1@$ZONE
  allow-notify: 127.0.0.1
  zonefile: "unbound-common.rpz"
rpz:
  name: "catchall."
  zonefile: "catchall.zone"
CONF
  echo "rpzPrimary(\"127.0.0.1:$ZONE\", \"common.rpz.allowlist.\", {tsigname=\"bench-xfr\", tsigalgo=\"hmac-sha256\", tsigsecret=\"$SECRET\", refresh=1})
rpzFile(\"$dir/catchall.zone\", {policyName=\"catchall\"})" > "$dir/rpz.lua"
  cat > "$dir/recursor.conf" <<CONF
local-address=127.0.0.1
local-port=$PDNS
daemon=no
socket-dir=$dir
lua-config-file=$dir/rpz.lua
forward-zones-recurse=.=127.0.0.1:$UP
dnssec=off
disable-packetcache=yes
quiet=yes
loglevel=0
allow-from=127.0.0.0/8
CONF
  for server in bind unbound pdns; do
    t0=$(date +%s%N)
    case $server in
      bind)    named -g -c "$dir/named.conf" >"$dir/named.log" 2>&1 & pid=$!; port=$BIND ;;
      unbound) unbound -d -c "$dir/unbound.conf" >"$dir/unbound.log" 2>&1 & pid=$!; port=$UNB ;;
      pdns)    pdns_recursor --config-dir="$dir" >"$dir/pdns.log" 2>&1 & pid=$!; port=$PDNS ;;
    esac
    PIDS+=($pid)
    for _ in $(seq 3000); do listed $port && break; sleep 0.05; done
    if listed $port; then echo "load $size $server $(ms_since "$t0")" >> "$RESULTS"; else echo "load $size $server failed" >> "$RESULTS"; fi
  done

  bin/bench-zoneprop -registry "http://$REG" -token-a "$A" -token-b "$B" -rounds "$ROUNDS" -prefix "zp$size" \
    -servers "bind=127.0.0.1:$BIND,unbound=127.0.0.1:$UNB,pdns=127.0.0.1:$PDNS" | sed "s/^/prop $size /" >> "$RESULTS"

  # The same AXFR from BIND, which holds the zone as a secondary.
  read -r bx_ms bx_bytes _ < <(xfr_stats $BIND AXFR)
  echo "axfr-bind $size $bx_ms $bx_bytes" >> "$RESULTS"
  # One change (the last round's approval) by IXFR, from us and from BIND.
  serial=$(dig +short @127.0.0.1 -p $ZONE common.rpz.allowlist SOA | awk '{print $3}')
  for _ in $(seq 100); do [ "$(dig +short @127.0.0.1 -p $BIND common.rpz.allowlist SOA | awk '{print $3}')" = "$serial" ] && break; sleep 0.1; done
  read -r _ ix_bytes ix_records < <(xfr_stats $ZONE "IXFR=$((serial - 1))")
  read -r _ bix_bytes bix_records < <(xfr_stats $BIND "IXFR=$((serial - 1))")
  echo "ixfr $size $ix_bytes $ix_records $bix_bytes $bix_records" >> "$RESULTS"
  # How each consumer took the changes.
  echo "consumer-ixfr $size bind=$(grep -c 'requesting IXFR\|IXFR' "$dir/named.log" || true) pdns=$(grep -c 'IXFR' "$dir/pdns.log" || true)" >> "$RESULTS"

  for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null || true; done
  wait "${PIDS[@]:1}" 2>/dev/null || true
  PIDS=("${PIDS[0]}")
done

echo
echo "== zone transfer: sign-off reaching quorum -> server resolving the new name (median of $ROUNDS, ms; each round after)"
awk '$1 == "prop" { printf "%-8s %-8s %6s ms   (", $2, $3, $4; for (i = 5; i <= NF; i++) printf "%s%s", (i > 5 ? " " : ""), $i; print ")" }' "$RESULTS"
echo
echo "== zone transfer: first load (server start -> enforcing the zone), ms"
awk '$1 == "load" { printf "%-8s %-8s %s\n", $2, $3, $4 }' "$RESULTS"
echo
echo "== AXFR of the whole zone: registry (first, then with the zone built) beside BIND re-serving it; registry RSS before and peak during the first"
join <(awk '$1 == "axfr" {print $2, $3, $4, $5, $6, $7, $8}' "$RESULTS" | sort) <(awk '$1 == "axfr-bind" {print $2, $3, $4}' "$RESULTS" | sort) |
  sort -n | awk '{ printf "%-8s records %s: registry %s ms (again %s ms), BIND %s ms, ratio %.2f; bytes %s vs %s; registry RSS %s MB, peak %s MB\n", $1, $5, $2, $3, $8, ($8 > 0 ? $3 / $8 : 0), $4, $9, $6, $7 }'
echo
echo "== IXFR for one approved site: bytes and records, registry vs BIND's journal"
awk '$1 == "ixfr" { printf "%-8s registry %s bytes (%s records), BIND %s bytes (%s records)\n", $2, $3, $4, $5, $6 }' "$RESULTS"
awk '$1 == "consumer-ixfr" { print "log lines naming IXFR:", $2, $3, $4 }' "$RESULTS"
