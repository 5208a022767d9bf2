#!/usr/bin/env bash
# The README's CPU figures, re-measured on the current code by one command:
#
#   bash eval/cpu_readme_figures.sh                     # PARTS="quickstart generate lora sampler"
#   PARTS="quickstart generate" bash eval/cpu_readme_figures.sh
#
# Runs the README's own commands (same configs) into runs/readme_figures/ (its own dir, replaced on each
# run) and keeps their logs and JSON under docs/benchmarks/cpu_readme/ ($OUT). The lines to read are
# gathered in $OUT/summary.txt. Parts:
#   quickstart  python recipes/train_text.py --config recipes/configs/shakespeare_tiny.yaml (wall time,
#               tokens/s, validation ELBO, the generation defaults it measured and saved)
#   generate    the README's three generate.py commands on that checkpoint
#   lora        recipes/sft_lora.py with wordnet_lora_tiny.yaml on it, then eval/sft_eval.py base vs tuned
#   sampler     eval/bench_sampler.py at batch 8 and 1 (the README's sampler table)
set -euo pipefail
cd "$(dirname "$0")/.."
PARTS=${PARTS:-"quickstart generate lora sampler"}
OUT=${OUT:-docs/benchmarks/cpu_readme}
R=runs/readme_figures
BASE=$R/shakespeare_tiny
LORA=$R/wordnet_lora_tiny
mkdir -p "$OUT" "$R"
SUMMARY=$OUT/summary.txt
has() { [[ " $PARTS " == *" $1 "* ]]; }
say() { echo "$*" | tee -a "$SUMMARY"; }
timed() {  # timed NAME CMD...: run CMD, its output to $OUT/NAME.log, wall seconds to the summary
  local name=$1; shift
  local t0=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1 || { echo "FAILED: $* (see $OUT/$name.log)"; tail -5 "$OUT/$name.log"; exit 1; }
  say "$name: $((SECONDS - t0)) s wall | $*"
}
: > "$SUMMARY"
say "# $(date -u +%FT%TZ) | $(nproc) CPUs | load $(cut -d' ' -f1-3 /proc/loadavg) | torch $(python -c 'import torch; print(torch.__version__)') | git $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty')"

if has quickstart; then
  rm -rf "$BASE"
  timed cpu_quickstart python recipes/train_text.py --config recipes/configs/shakespeare_tiny.yaml --output_dir "$BASE"
  grep -E "^model:|validation ELBO|generation defaults|train_runtime" "$OUT/cpu_quickstart.log" | tee -a "$SUMMARY"
  grep -oE "step [0-9]+: [0-9,]+ tokens/s" "$OUT/cpu_quickstart.log" | tail -3 | tee -a "$SUMMARY"
fi

if has generate; then
  G="python recipes/generate.py --model $BASE --prompt ROMEO:"
  timed cpu_generate_default $G --steps 64 --gen-length 64
  timed cpu_generate_ancestral $G --temperature 1 --remasking random
  timed cpu_generate_dual_cache $G --cache dual --block-length 16
  for f in default ancestral dual_cache; do say "--- generate $f:"; grep -v "^\s*$" "$OUT/cpu_generate_$f.log" | head -8 | tee -a "$SUMMARY"; done
fi

if has lora; then
  rm -rf "$LORA"
  timed cpu_wordnet_lora_tiny python recipes/sft_lora.py --base_model "$BASE" --config recipes/configs/wordnet_lora_tiny.yaml \
    --output_dir "$LORA"
  grep -E "^LoRA r=|eval_nll|^---" "$OUT/cpu_wordnet_lora_tiny.log" | tail -8 | tee -a "$SUMMARY"
  rm -rf "$OUT/sft_eval"
  timed cpu_sft_eval python eval/sft_eval.py --base "$BASE" --adapter "$LORA" --num-examples 60 --out "$OUT/sft_eval"
  head -12 "$OUT/sft_eval/sft_eval.md" | tee -a "$SUMMARY"
fi

if has sampler; then
  B="python eval/bench_sampler.py --model $BASE --gen-length 64 --steps 32 --block-length 32 --repeats 3"
  timed cpu_sampler_b8 $B --batch 8 --out "$OUT/cpu_sampler_b8.json" --overwrite
  timed cpu_sampler_b1 $B --batch 1 --out "$OUT/cpu_sampler_b1.json" --overwrite
  tail -12 "$OUT/cpu_sampler_b8.log" | tee -a "$SUMMARY"
fi
echo "summary: $SUMMARY"
