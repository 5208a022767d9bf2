#!/usr/bin/env bash
# AR → MDM adaptation of SmolLM2-135M-Instruct on a 2×H200 machine in one 10-minute call (docs/backbones.md).
# GPU 0: LoRA r=64 (+ the [MASK] row) — what comes back (adapter in bf16, split into ≤15 MiB parts + sha256).
# GPU 1: the same run with full fine-tuning, for comparison (its weights do not come back; its curve does).
# Then: side-by-side samples + generative perplexity of AR source / untrained / LoRA / full (eval/adapt_compare.py).
# Expects: the GGUF at $GGUF_DIR/SmolLM2-135M-Instruct.Q4_1.gguf, the packed data at $DATA, wheels on PYTHONPATH.
#   GGUF_DIR=/tmp/gguf DATA=../.data/adapt_smollm2.npz OUT=/tmp/out bash eval/gpu/adapt_smollm2.sh
set -uo pipefail
: "${GGUF_DIR:?}" "${DATA:?}" "${OUT:?}"
TRAIN_S=${TRAIN_S:-330}
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
G=SmolLM2-135M-Instruct.Q4_1.gguf
COMMON=(--config recipes/configs/adapt_smollm2_gpu.yaml --source "$GGUF_DIR" --gguf_file $G --data "$DATA"
        --time_budget_s "$TRAIN_S")
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, torch.cuda.get_device_name(0), torch.cuda.device_count())"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
CUDA_VISIBLE_DEVICES=0 timeout 430 python3 recipes/adapt_ar.py "${COMMON[@]}" --output_dir /tmp/run_lora \
    --results_json "$OUT/lora_results.json" > /tmp/lora.log 2>&1 &
P0=$!
CUDA_VISIBLE_DEVICES=1 timeout 430 python3 recipes/adapt_ar.py "${COMMON[@]}" --lora false --learning_rate 2e-4 \
    --output_dir /tmp/run_full --results_json "$OUT/full_results.json" > /tmp/full.log 2>&1 &
P1=$!
( while kill -0 $P0 2>/dev/null; do sleep 30; nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv,noheader | tr '\n' ' '; echo; done ) &
wait $P0; echo "lora rc=$?"; wait $P1; echo "full rc=$?"
(echo "=== LoRA run (GPU 0)"; cat /tmp/lora.log; echo "=== full fine-tuning run (GPU 1)"; cat /tmp/full.log) > "$OUT/train.log"
grep -E "ratio|AR source|trainable|rc=|Error|error" "$OUT/train.log" | tail -n 30
if [ -f /tmp/run_lora/adapter_config.json ]; then
  python3 -c "from mdlm.adapt.persist import pack_adapter; print(pack_adapter('/tmp/run_lora', '$OUT/smollm2_mdm_lora'))"
  cat "$OUT/smollm2_mdm_lora.sha256"
fi
V=(); [ -f /tmp/run_lora/adapter_config.json ] && V+=(--variant lora=/tmp/run_lora)
[ -f /tmp/run_full/config.json ] && V+=(--variant full=/tmp/run_full)
CUDA_VISIBLE_DEVICES=0 timeout 140 python3 eval/adapt_compare.py --source "$GGUF_DIR" --gguf_file $G \
    --shift_token "<|endoftext|>" "${V[@]}" --out "$OUT/compare.json" 2>&1 | grep -v -E "Converting|Loading weights" | tail -n 20
ls -la "$OUT"
