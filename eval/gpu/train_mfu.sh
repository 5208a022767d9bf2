# MFU of the real training recipe (issue 19 item 1), one call on 2×H200: the 125M config on GPU 0 and the 350M config
# on GPU 1, each run by recipes/train_text.py itself (data loading, logging; the bf16 peak measured at the start of
# every run), printing tokens/s and MFU per logging interval and a steady-state summary; a torch.profiler table of 5
# steps (--profile_steps) with the GPU busy share. Variants in a row per GPU (~90 s each, compile included):
#   BASE=DIR: the same config run by an older tree in DIR (e.g. `git archive <rev> | tar -x -C .base`), for before/after
#   BATCHES_125M / BATCHES_350M: micro-batches to try (default "32 64" and "16 32")
#   SIZES: "125m 350m" (default; one GPU each at the same time, or one after the other on a one-GPU machine)
#   EXTRA_125M / EXTRA_350M: recipe arguments for one more variant per size at its first batch, e.g.
#     EXTRA_125M="--torch_compile_mode max-autotune-no-cudagraphs" (named new_SIZE_bB_extra in the logs)
#   run(command="bash eval/gpu/train_mfu.sh", kind="nvidia-h200-x2", carry=[".whl", ".data/shakespeare_bible.tgz", ".base"])
#   DRY=1 bash eval/gpu/train_mfu.sh     # CPU dry run here: a tiny model, 10 steps per variant
OUT=${OUT:-out_mfu}; DEADLINE=${DEADLINE:-570}
source eval/gpu/common.sh
if [ ! -d .data/shakespeare_bible ] && [ -f .data/shakespeare_bible.tgz ]; then tar xzf .data/shakespeare_bible.tgz -C .data; fi
if [ "${DRY:-0}" = 1 ] && [ ! -f .data/shakespeare_bible/dataset_dict.json ]; then
  python3 recipes/build_corpus.py --dataset shakespeare+bible --out .data/shakespeare_bible | tail -n 1
fi
need_files "carry .data/shakespeare_bible.tgz" .data/shakespeare_bible/dataset_dict.json
DATA=$PWD/.data/shakespeare_bible; STEPS=${STEPS:-80}; PROF=${PROF:-50:5}
C="--dataset $DATA --max_steps $STEPS --logging_steps 10 --eval_strategy no --save_strategy no --sample_on_end 0 --disable_tqdm true"
if [ "${DRY:-0}" = 1 ]; then
  STEPS=10; PROF=3:2
  C="--dataset $DATA --max_steps 10 --logging_steps 2 --eval_strategy no --save_strategy no --sample_on_end 0 --disable_tqdm true
     --hidden_size 64 --num_hidden_layers 2 --num_attention_heads 2 --intermediate_size 128 --seq_len 128
     --max_eval_sequences 8 --per_device_eval_batch_size 4 --bf16 false --torch_compile false --dataloader_num_workers 0 --use_cpu true"
  BATCHES_125M=${BATCHES_125M:-4}; BATCHES_350M=${BATCHES_350M:-4}
fi
L=$OUT/logs; mkdir -p $L; R=${RUNS:-/tmp/mfu_runs}; rm -rf $R
variant() {  # NAME GPU TREE CONFIG [extra args]: one recipe run, log in $L/NAME.log, profile in $L/NAME.profile.txt
  local name=$1 gpu=$2 tree=$3 cfg=$4; shift 4
  say "$name on GPU $gpu: start"
  (cd $tree && CUDA_VISIBLE_DEVICES=$gpu PYTHONPATH=${PYTHONPATH%%:*}:$PWD run_for 30 python3 recipes/train_text.py \
     --config recipes/configs/$cfg $C --output_dir $R/$name "$@") > $L/$name.log 2>&1
  echo "exit $?" >> $L/$name.log
  [ -f $R/$name/profile.txt ] && cp $R/$name/profile.txt $L/$name.profile.txt
  say "$name: $(grep -E '^throughput over|^exit' $L/$name.log | tr '\n' ' ')"
}
gpu_runs() {  # GPU SIZE CONFIG BATCHES
  local gpu=$1 size=$2 cfg=$3 b
  if [ -n "${BASE:-}" ] && [ -d "$BASE" ]; then variant base_${size} $gpu $BASE $cfg; fi
  for b in $4; do variant new_${size}_b$b $gpu $PWD $cfg --per_device_train_batch_size $b --profile_steps $PROF; done
  b=${4%% *}
  if [ -n "$5" ]; then variant new_${size}_b${b}_extra $gpu $PWD $cfg --per_device_train_batch_size $b --profile_steps $PROF $5; fi
}
size_runs() {  # SIZE GPU
  case $1 in
    125m) gpu_runs $2 125m gpt2_125m.yaml "${BATCHES_125M:-32 64}" "${EXTRA_125M:-}" ;;
    350m) gpu_runs $2 350m gpt2_350m.yaml "${BATCHES_350M:-16 32}" "${EXTRA_350M:-}" ;;
    *) echo "SIZES: 125m and/or 350m, got $1" >&2; exit 2 ;;
  esac
}
SIZES=${SIZES:-125m 350m}; NGPU=$(nvidia-smi -L 2>/dev/null | wc -l); g=0
for s in $SIZES; do
  if [ "$NGPU" -ge 2 ]; then size_runs $s $g & g=$((g + 1)); else size_runs $s 0; fi  # one GPU: one size after the other
done
wait
for f in $L/*.log; do echo "--- $f"; grep -E "^MFU against|^step [0-9]+:|^throughput over|^profiled|Error|^exit" $f | tail -14; done | tee $OUT/summary.txt
for f in $L/*.profile.txt; do echo "--- $f"; head -22 $f | cut -c1-70,100-; tail -1 $f; done >> $OUT/summary.txt 2>/dev/null
tar czf $OUT/mfu_logs.tgz -C $OUT logs && rm -rf $L
say "done"
