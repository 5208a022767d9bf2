# Call 1 of the decoding benchmark (issue 17): train, at equal tokens (same data, steps, batch, sequence length,
# optimizer, seed), the ~125M MDM and block-diffusion (BD3) models of block size 4, 16 and 64 on
# .data/shakespeare_bible, two runs after another on each of two GPUs (CUDA_VISIBLE_DEVICES), and return their
# validation NELBO (eval_metrics.json) and logs in decode_train.tgz. The models stay in runs/decode/ for call 2
# (eval/gpu/decode_bench.sh) while the machine is warm (~30 s after a call).
#   run(command="bash eval/gpu/decode_train.sh", kind="nvidia-h200-x2", carry=[".whl", ".data/shakespeare_bible"])
#   DRY=1 bash eval/gpu/decode_train.sh     # CPU dry run here: tiny models, 3 steps, seconds
# STEPS (default 600) × 32 sequences × SEQ_LEN (1088 = 1024 generated + 64 of prompt) tokens per run.
OUT=${OUT:-out_decode_train}; DEADLINE=${DEADLINE:-560}
source eval/gpu/common.sh
RUNS=${RUNS:-runs/decode}; STEPS=${STEPS:-600}; SEQ_LEN=${SEQ_LEN:-1088}
need_files "carry .data/shakespeare_bible (python recipes/build_corpus.py --dataset shakespeare+bible --out .data/shakespeare_bible)" \
  .data/shakespeare_bible/dataset_dict.json
C="--config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible --seq_len $SEQ_LEN --max_steps $STEPS
   --eval_strategy no --save_strategy no --logging_steps 50 --sample_on_end 0 --seed 0"
if [ "${DRY:-0}" = 1 ]; then  # tiny model on the CPU: checks the commands, not the figures
  STEPS=3; SEQ_LEN=128; RUNS=${DRY_RUNS:-$(mktemp -d)/decode}
  C="--config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible --seq_len 128 --max_steps 3
     --hidden_size 64 --num_hidden_layers 2 --num_attention_heads 2 --intermediate_size 128
     --per_device_train_batch_size 4 --per_device_eval_batch_size 4 --max_eval_sequences 8 --bf16 false
     --torch_compile false --dataloader_num_workers 0 --use_cpu true --eval_strategy no --save_strategy no
     --logging_steps 1 --sample_on_end 0 --seed 0"
fi
train() {  # NAME GPU [extra args]: one run, its log in $OUT/NAME.log
  local name=$1 gpu=$2; shift 2
  local t=$(date +%s)
  if [ -f $RUNS/$name/eval_metrics.json ]; then  # an earlier call on this warm machine trained it
    say "train $name: kept from an earlier call ($RUNS/$name)"; cp $RUNS/$name/eval_metrics.json $OUT/${name}_eval_metrics.json; return
  fi
  say "train $name on GPU $gpu ($STEPS steps): start"
  CUDA_VISIBLE_DEVICES=$gpu run_for 15 python3 recipes/train_text.py $C --output_dir $RUNS/$name "$@" \
    > $OUT/$name.log 2>&1
  local rc=$?
  say "train $name: exit $rc after $(( $(date +%s) - t )) s | $(grep -E 'validation ELBO|rror' $OUT/$name.log | tail -1)"
  [ -f $RUNS/$name/eval_metrics.json ] && cp $RUNS/$name/eval_metrics.json $OUT/${name}_eval_metrics.json
}
( train mdm 0; train bd3_64 0 --objective bd3 --block_size 64 ) &
( train bd3_16 1 --objective bd3 --block_size 16; train bd3_4 1 --objective bd3 --block_size 4 ) &
wait
say "validation NELBO (nats/token) at equal tokens:"
for n in mdm bd3_4 bd3_16 bd3_64; do
  python3 - $OUT/${n}_eval_metrics.json $n <<'PY' | tee -a $LOG
import json, os, sys
f, n = sys.argv[1:]
print(f"  {n}: {json.load(open(f))['eval_nll']:.4f}" if os.path.isfile(f) else f"  {n}: missing")
PY
done
tar czf $OUT/decode_train.tgz -C $OUT $(cd $OUT && ls *.log *_eval_metrics.json 2>/dev/null | grep -v '^run.log$')
say "done"
