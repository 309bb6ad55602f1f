#!/usr/bin/env bash
# Calibrates the link emulator: runs today's deployed `lenet` (three `ppml party` processes and
# `ppml eval --parties` as the client, all over TLS) with every connection through `ppml relay`,
# and prints the per-image latency for each protocol and link profile, next to the in-process
# round count and the floor it implies (rounds x one-way delay: all parties send at once, so a
# round costs one one-way delay).
#
#   scripts/link-calibrate.sh                 # wan and loopback, mpc3 and mpc2, 10 images
#   PROFILES="wan lan" LIMIT=20 scripts/link-calibrate.sh
#
# Environment: PROFILES (loopback lan wan, or `direct`: no relay at all, to see the relay's own
# cost), PROTOCOLS (mpc3 mpc2), MODEL (lenet), LIMIT (10),
# BASE_PORT (17400: the relay listens on BASE_PORT..+3, the nodes on BASE_PORT+10..+13),
# PPML (a built binary; default: cargo build --release -p ppml), KEEP=1 keeps the work folder.
set -euo pipefail
cd "$(dirname "$0")/.."

PROFILES=${PROFILES:-"loopback wan"}
PROTOCOLS=${PROTOCOLS:-"mpc3 mpc2"}
MODEL=${MODEL:-lenet}
LIMIT=${LIMIT:-10}
BASE_PORT=${BASE_PORT:-17400}
if [ -z "${PPML:-}" ]; then
  cargo build -q --release -p ppml
  PPML=target/release/ppml
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ppml-link-calibrate.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

relay_port() { echo $((BASE_PORT + $1)); }
node_port() { echo $((BASE_PORT + 10 + $1)); }
# Where the others connect to node $1: the relay, or the node itself without one.
reach_port() { if [ "$profile" = direct ]; then node_port "$1"; else relay_port "$1"; fi; }

# Waits until FILE contains PATTERN (or the process PID died).
wait_for() {
  local file=$1 pattern=$2 pid=$3
  for _ in $(seq 1 200); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; return 1; }
    sleep 0.05
  done
  echo "timed out waiting for '$pattern' in $file" >&2
  return 1
}

# rounds: per image, in-process; floor: rounds x one-way delay; relay MB: all bytes the relay
# delivered in the run (mesh set-up and weight sharing included).
printf '%-8s %-9s %8s %12s %12s %10s %14s %12s\n' \
  protocol profile images "median ms" "p95 ms" "rounds" "floor ms" "relay MB"
for proto in $PROTOCOLS; do
  # Critical-path rounds per image, counted by the in-process run (a deployed client counts
  # only its own traffic).
  rounds=$("$PPML" eval --model "$MODEL" --backend "$proto" --batch 1 --limit 1 --json 2>/dev/null \
    | tail -n 1 | jq '.rounds')
  for profile in $PROFILES; do
    dir="$work/$proto-$profile"
    "$PPML" mpc-certs --out "$dir" --protocol "$proto" >/dev/null
    # Every node listens on its own port; the others reach it through the relay's port for it
    # (or, for `direct`, at that port itself).
    {
      echo "protocol = \"$proto\""
      echo 'ca = "ca.pem"'
      for i in 0 1 2; do
        printf '\n[[party]]\naddress = "127.0.0.1:%s"\nlisten = "127.0.0.1:%s"\ncert = "party-%s.pem"\nkey = "party-%s.key"\n' \
          "$(reach_port $i)" "$(node_port $i)" $i $i
      done
      printf '\n[client]\naddress = "127.0.0.1:%s"\nlisten = "127.0.0.1:%s"\ncert = "client.pem"\nkey = "client.key"\n' \
        "$(reach_port 3)" "$(node_port 3)"
    } > "$dir/parties.toml"
    relay=
    if [ "$profile" != direct ]; then
      routes=()
      for i in 0 1 2 3; do routes+=(--route "127.0.0.1:$(relay_port $i)=127.0.0.1:$(node_port $i)"); done
      "$PPML" relay --profile "$profile" "${routes[@]}" --report-every 1 2> "$dir/relay.log" &
      relay=$!
      pids+=("$relay")
      wait_for "$dir/relay.log" "relay: ready" "$relay"
    fi
    parties=()
    for i in 0 1 2; do
      "$PPML" party --id $i --config "$dir/parties.toml" --model "$MODEL" 2> "$dir/party-$i.log" &
      parties+=($!)
      pids+=($!)
    done
    "$PPML" eval --model "$MODEL" --backend "$proto" --parties "$dir/parties.toml" \
      --batch 1 --limit "$LIMIT" --json > "$dir/eval.json" 2> "$dir/eval.log" \
      || { cat "$dir/eval.log" "$dir"/party-*.log >&2; exit 1; }
    for p in "${parties[@]}"; do wait "$p"; done
    floor_ms=0.0
    relay_mb=-
    if [ -n "$relay" ]; then
      sleep 1.2 # the relay's last counter report
      kill "$relay"
      wait "$relay" 2>/dev/null || true
      delay_ms=$(sed -n 's/^relay: profile .*(\([0-9.]*\) ms one way.*/\1/p' "$dir/relay.log")
      floor_ms=$(awk -v r="$rounds" -v d="$delay_ms" 'BEGIN {printf "%.1f", r * d}')
      relay_mb=$(grep -- ' -> ' "$dir/relay.log" | grep connections | tail -n 4 \
        | awk '{to += $(NF-6); back += $(NF-2)} END {printf "%.2f", (to + back) / 1e6}')
    fi
    jq -r --arg p "$proto" --arg l "$profile" --arg r "$rounds" --arg d "$floor_ms" --arg mb "$relay_mb" \
      '[$p, $l, (.n|tostring), (.latency_ms*1000|round/1000|tostring), (.latency_p95_ms*1000|round/1000|tostring), $r, $d, $mb] | @tsv' \
      "$dir/eval.json" \
      | awk -F'\t' '{printf "%-8s %-9s %8s %12s %12s %10s %14s %12s\n", $1, $2, $3, $4, $5, $6, $7, $8}'
  done
done
