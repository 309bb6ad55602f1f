#!/usr/bin/env bash
# Agreement with plain inference on the full MNIST test set, deployed: for every zoo model and
# both MPC protocols, starts the three parties as `ppml party` processes over TLS on 127.0.0.1,
# runs `ppml eval --parties` as their client on the 10,000 test images, and prints one line per
# (model, protocol) with accuracy, agreement and the client's throughput.
#
#   scripts/mpc-deployed-agreement.sh                       # every zoo model, mpc3 and mpc2
#   MODELS="lenet mlp" PROTOCOLS=mpc3 LIMIT=1000 scripts/mpc-deployed-agreement.sh
#
# Environment: MODELS (the zoo), PROTOCOLS (mpc3 mpc2), LIMIT (10000), BATCH (100),
# COMPARISON (bit-decomposition; or fss), BASE_PORT (17500),
# PPML (a built binary; default: target/release/ppml after a workspace build), KEEP=1 keeps the
# work folder (certificates, party logs, the eval JSON).
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS=${MODELS:-"mlp cnn lenet minionn chameleon mlp-sq lenet-sq"}
PROTOCOLS=${PROTOCOLS:-"mpc3 mpc2"}
LIMIT=${LIMIT:-10000}
BATCH=${BATCH:-100}
COMPARISON=${COMPARISON:-bit-decomposition}
BASE_PORT=${BASE_PORT:-17500}
if [ -z "${PPML:-}" ]; then
  # The whole workspace, so that the build reuses what `cargo test --workspace` compiled.
  cargo build -q --release --workspace --all-targets
  PPML=target/release/ppml
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ppml-deployed-agreement.XXXXXX")
pids=()
stop_parties() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_parties
  if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

printf '%-10s %-5s %7s %9s %10s %14s\n' model proto images accuracy agreement "client img/s"
for proto in $PROTOCOLS; do
  dir="$work/$proto"
  "$PPML" mpc-certs --out "$dir" --protocol "$proto" --base-port "$BASE_PORT" >/dev/null
  if [ "$COMPARISON" != bit-decomposition ]; then
    sed -i "1i comparison = \"$COMPARISON\"" "$dir/parties.toml"
  fi
  for model in $MODELS; do
    for i in 0 1 2; do
      rm -f "$dir/ready-$i"
      "$PPML" party --id "$i" --config "$dir/parties.toml" --model "$model" \
        --ready-file "$dir/ready-$i" 2> "$dir/party-$i-$model.log" &
      pids+=($!)
    done
    for _ in $(seq 1 600); do
      [ -e "$dir/ready-0" ] && [ -e "$dir/ready-1" ] && [ -e "$dir/ready-2" ] && break
      for p in "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null || { cat "$dir"/party-*-"$model".log >&2; exit 1; }
      done
      sleep 0.1
    done
    out="$dir/eval-$model.json"
    "$PPML" eval --model "$model" --backend "$proto" --parties "$dir/parties.toml" \
      --limit "$LIMIT" --batch "$BATCH" --json 2>/dev/null | tail -n 1 > "$out"
    jq -r --arg m "$model" --arg p "$proto" \
      '[$m, $p, .n, .accuracy * 100, .agreement * 100, .throughput_img_per_s] | @tsv' "$out" \
      | awk -F'\t' '{ printf "%-10s %-5s %7d %8.2f%% %9.2f%% %14.0f\n", $1, $2, $3, $4, $5, $6 }'
    stop_parties
  done
done
