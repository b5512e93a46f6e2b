#!/usr/bin/env bash
# KV cache and peak RSS of long rollouts with and without a sliding window, side by side: two random
# Mistral-shaped models identical but for "sliding_window" (W = 128 against none; 8 layers x 8 KV
# heads x 64, so the KV cache dominates the process), 32 sequences of 16 prompt + 768 new tokens
# through grpo_generate (greedy, EOS ignored), eager and static decoding. A windowed layer's cache is
# a ring of W slots: the cache is W / L of the full one (L = 784 positions), whatever the decode
# mode. Runs alternate between the two models, 3 each; median and range of the peak RSS.
#   bench/sliding_window_memory.sh [build_dir]     (env REPS: runs a side, default 3; MODES: default "eager static")
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for name in window full; do
  window=$([[ $name == window ]] && echo 128 || echo null)
  cat > "$tmp/$name.json" <<JSON
{"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 256, "intermediate_size": 512,
 "num_hidden_layers": 8, "num_attention_heads": 8, "num_key_value_heads": 8, "head_dim": 64, "max_position_embeddings": 4096,
 "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "sliding_window": $window, "tie_word_embeddings": true, "bos_token_id": 256,
 "eos_token_id": 258, "torch_dtype": "float32"}
JSON
  "$build/grpo_sft" "$tmp/$name" --init "$tmp/$name.json" --data data/tiny-math/train.jsonl --set max_steps=1 --set eval_limit=1 \
    --set max_new_tokens=8 --set output_dir="$tmp/sft-$name" > "$tmp/init-$name.log" 2>&1 || { cat "$tmp/init-$name.log"; exit 1; }
done
ids=$(python3 -c "print(';'.join(','.join(str(3 + (7 * i + j) % 250) for j in range(16)) for i in range(32)))")
gen() {  # gen MODEL MODE -> "peak_rss_mb kv_cache_mb seconds"
  /usr/bin/time -f "%M %e" -o "$tmp/time" "$build/grpo_generate" "$tmp/$1" --prompt-ids "$ids" --max-new-tokens 768 --ignore-eos \
    --greedy --device cpu --decode-mode "$2" > /dev/null 2> "$tmp/err" || { cat "$tmp/err"; exit 1; }
  read -r rss secs < "$tmp/time"
  echo "$((rss / 1024)) $(grep -o 'kv_cache_mb=[0-9.]*' "$tmp/err" | cut -d= -f2) $secs"
}
for mode in ${MODES:-eager static}; do
  for rep in $(seq "${REPS:-3}"); do
    for name in full window; do echo "$mode $name $(gen "$name" "$mode")"; done
  done
done > "$tmp/rows.txt"
python3 - "$tmp/rows.txt" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print("| decode | model | KV cache (MB) | peak RSS (MB), median [range] | vs full | s, median |\n|---|---|---|---|---|---|")
for mode in dict.fromkeys(x[0] for x in rows):
    med = {}
    for name in ("full", "window"):
        r = [x for x in rows if x[0] == mode and x[1] == name]
        rss = [float(x[2]) for x in r]
        med[name] = statistics.median(rss)
        ratio = med[name] / med["full"]
        print(f"| {mode} | {'W = 128' if name == 'window' else 'no window'} | {r[0][3]} | {med[name]:.0f} [{min(rss):.0f}, {max(rss):.0f}] "
              f"| {ratio:.2f}x | {statistics.median(float(x[4]) for x in r):.1f} |")
PY
