# DeepSpeed ZeRO on 2×H200, 350M config (issue 19 item 2), in ONE call of ≤ 9.5 min:
#   A. throughput: 1 GPU plain (GPU 0) ‖ 1 GPU ZeRO-2 (GPU 1) side by side, then ZeRO-1, ZeRO-2, ZeRO-3 on 2 GPUs;
#      each STEPS steps (default 110, logging every 10; the first interval = warm-up is excluded → 100 steady steps),
#      per-rank tokens/s and torch.cuda.max_memory_allocated (eval/zero_run.py), nvidia-smi peak per GPU.
#   B. ZeRO-3 resume: 2 GPUs train to 2K (checkpoint at K, logging every step) = the reference curve; the step-K
#      checkpoint consolidated by recipes/consolidate_zero.py (DeepSpeed's ds_to_universal: fp32 weights + Adam
#      state) resumes K → 2K on ONE GPU (gradient accumulation 2: same global batch) ‖ the same with
#      --weights-only (zero_to_fp32, Adam restarted) on the other GPU ‖ K → K+CPU_STEPS on the CPU; and, during the
#      consolidation, 1 GPU from step 0 with accumulation 2 (no checkpoint): the numerics-only difference.
#   run(command="bash eval/gpu/zero_scaling.sh", kind="nvidia-h200-x2", carry=[".whl", ".data/shakespeare_bible.tgz"])
#   DRY=1 OUT=/tmp/zs bash eval/gpu/zero_scaling.sh   # CPU dry run (tiny model, DeepSpeed CPU accelerator; 6 min on 2 busy cores)
# torch_compile is off in every run: compiling the 350M model costs ~1 min per process start and this call starts
# 9 runs; the same setting everywhere keeps the scaling ratio fair (COMPILE=true to override).
# The micro-batch is the config's (32 × 1024 tokens per GPU; BATCH=16 halves every run's step time if the call
# runs short). Time budget (s, estimated for the H200s at ~0.43 s per uncompiled 350M step of 32 sequences; each
# run ≈ 25 s start + steps + 15 s final eval/save): setup 40 | A: 1-GPU pair 90, ZeRO-1 90, ZeRO-2 90, ZeRO-3 95 |
# B: ZeRO-3 2-GPU to 2K (2 checkpoint saves) 60, both consolidations at once 45, resumes 1 GPU ‖ weights-only ‖
# CPU 50 (the CPU one may run until the deadline) | table 5 → ~555 s of DEADLINE=565. Each stage's time limit
# keeps the estimate of what follows (run_for); every run's record is written at each log, so a run cut in its
# final evaluation or save still counts. If one call runs short: two calls PARTS=A then PARTS=B with RUNS=runs/zero
# on the warm machine (the second call's table then holds both parts), or BATCH=16.
# Output: $OUT/zero_scaling.json (command, GPU, versions, date, every figure) + zero_scaling.md (eval/zero_table.py)
#   + zero_plan.md (125M/350M/1B memory and tokens/s per GPU at 1, 2, 8, 64 GPUs) + zero_logs.tgz (logs, per-rank
#   records, nvidia-smi samples).
OUT=${OUT:-out_zero_scaling}; DEADLINE=${DEADLINE:-$([ "${DRY:-0}" = 1 ] && echo 1500 || echo 565)}
source eval/gpu/common.sh
PARTS=${PARTS:-AB}; RA=(430 340 250 160); [[ $PARTS == *B* ]] || RA=(270 180 90 10)  # time kept after each A stage
STEPS=${STEPS:-110}; K=${K:-8}; CPU_STEPS=${CPU_STEPS:-2}; COMPILE=${COMPILE:-false}; R=${RUNS:-runs/zero_$(date +%s)}
if [ ! -d .data/shakespeare_bible ] && [ -f .data/shakespeare_bible.tgz ]; then tar xzf .data/shakespeare_bible.tgz -C .data; fi
C="--config recipes/configs/gpt2_350m.yaml --dataset .data/shakespeare_bible --torch_compile $COMPILE --eval_strategy no
   ${BATCH:+--per_device_train_batch_size $BATCH}
   --max_eval_sequences 64 --sample_on_end 0 --seed 0 --disable_tqdm true --report_to none"
if [ "${DRY:-0}" = 1 ]; then  # tiny model on the CPU through DeepSpeed's CPU accelerator: checks the commands
  export DS_ACCELERATOR=cpu OMP_NUM_THREADS=1; STEPS=6; K=2; CPU_STEPS=1; CPU_THREADS=1; R=$(mktemp -d)/zero
  C="--config recipes/configs/gpt2_350m.yaml --dataset shakespeare --tokenizer bpe --bpe_vocab_size 384
     --max_train_documents 120 --seq_len 64 --hidden_size 64 --num_hidden_layers 2 --num_attention_heads 2
     --intermediate_size 128 --per_device_train_batch_size 8 --per_device_eval_batch_size 4 --max_eval_sequences 8 --bf16 false --torch_compile false
     --dataloader_num_workers 0 --use_cpu true --eval_strategy no --sample_on_end 0 --seed 0 --disable_tqdm true
     --learning_rate 0.004 --warmup_steps 2 --report_to none"
else
  need_files "carry .data/shakespeare_bible.tgz (tar czf .data/shakespeare_bible.tgz -C .data shakespeare_bible)" \
    .data/shakespeare_bible/dataset_dict.json
fi
LOGS=$R/logs; mkdir -p $LOGS
LOG_EVERY=$(( ${DRY:-0} == 1 ? 1 : 10 ))
smi() {  # NAME: sample nvidia-smi memory every 0.5 s into $LOGS/NAME.smi until killed
  command -v nvidia-smi >/dev/null && exec nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits -lms 500 > $LOGS/$1.smi
}
launch() {  # NAME GPUS NPROC RESERVE [args]: one run of eval/zero_run.py, record in $LOGS/NAME/, log $LOGS/NAME.log
  local name=$1 gpus=$2 n=$3 reserve=$4 t=$(date +%s); shift 4
  say "$name (GPUs ${gpus:-none}, $n process(es)): start"
  local cmd=(python3 eval/zero_run.py); [ "$n" -gt 0 ] && cmd=(python3 -m torch.distributed.run --standalone --nproc_per_node $n eval/zero_run.py)
  CUDA_VISIBLE_DEVICES=$gpus run_for $reserve "${cmd[@]}" --record $LOGS/$name $C "$@" > $LOGS/$name.log 2>&1
  local rc=$?; echo "$rc $(( $(date +%s) - t ))" > $LOGS/$name.status
  say "$name: exit $rc after $(( $(date +%s) - t )) s | $(grep -E '^step [0-9]+:|rror' $LOGS/$name.log | tail -1)"
}
bench() {  # NAME GPUS NPROC RESERVE ZERO(none|1|2|3) [args]: a throughput run of STEPS steps, nvidia-smi sampled
  local name=$1 gpus=$2 n=$3 reserve=$4 z=$5; shift 5
  local ds=(); [ "$z" != none ] && ds=(--deepspeed recipes/deepspeed/zero$z.json)
  smi $name & local smi_pid=$!
  launch $name "$gpus" $n $reserve "${ds[@]}" --max_steps $STEPS --logging_steps $LOG_EVERY --save_strategy no \
    --output_dir $R/$name "$@"
  kill $smi_pid 2>/dev/null
}
G1=$(( ${DRY:-0} == 1 ? 0 : 1 ))  # the second device: GPU 1 (a CPU dry run has none)
# ---- A. throughput -----------------------------------------------------------------------------------------------
if [[ $PARTS == *A* ]]; then
  ( bench plain_1gpu 0 0 ${RA[0]} none ) & ( bench zero2_1gpu $G1 1 ${RA[0]} 2 ) & wait
  bench zero1_2gpu 0,1 2 ${RA[1]} 1
  bench zero2_2gpu 0,1 2 ${RA[2]} 2
  bench zero3_2gpu 0,1 2 ${RA[3]} 3
fi
# ---- B. ZeRO-3 checkpoint at K on 2 GPUs → resume on 1 GPU and on the CPU -----------------------------------------
if [[ $PARTS == *B* ]]; then
B="--max_steps $((2 * K)) --logging_steps 1 --save_strategy steps --save_steps $K"
launch zero3_ref 0,1 2 100 --deepspeed recipes/deepspeed/zero3.json $B --output_dir $R/zero3_ref
consolidate() {  # WHAT [--weights-only]: the step-K checkpoint → $R/z3_WHAT (a plain run dir that resumes anywhere)
  local w=$1 t=$(date +%s); shift
  run_for 55 python3 recipes/consolidate_zero.py $R/zero3_ref/checkpoint-$K --out $R/z3_$w "$@" > $LOGS/consolidate_$w.log 2>&1
  say "consolidate ($w): exit $? after $(( $(date +%s) - t )) s | $(tail -1 $LOGS/consolidate_$w.log)"
}
# beside them on GPU 0: one GPU from step 0 with accumulation 2 and no checkpoint — how far the 2-GPU DeepSpeed bf16
# curve and a 1-GPU torch-AMP curve differ by numerics alone (the floor for the resume delta)
( consolidate full ) & ( consolidate weights_only --weights-only ) &
( launch scratch_1gpu 0 0 55 --logging_steps 1 --save_strategy no --gradient_accumulation_steps 2 \
    --max_steps $((2 * K)) --output_dir $R/scratch_1gpu ) & wait
[ -d $R/z3_full ] && cp -r $R/z3_full $R/z3_cpu
RES="--logging_steps 1 --save_strategy no --resume_from_checkpoint auto --gradient_accumulation_steps 2"
( launch resume_1gpu 0 0 25 $RES --max_steps $((2 * K)) --output_dir $R/z3_full ) &
( launch resume_weights_only_1gpu $G1 0 25 $RES --max_steps $((2 * K)) --output_dir $R/z3_weights_only ) &
( export OMP_NUM_THREADS=${CPU_THREADS:-12}  # leave cores to the two GPU runs beside it
  launch resume_cpu "" 0 20 $RES --max_steps $((K + CPU_STEPS)) --output_dir $R/z3_cpu --use_cpu true \
    --dataloader_num_workers 0 ) &
wait
fi
# ---- table --------------------------------------------------------------------------------------------------------
python3 eval/zero_table.py --logs $LOGS --k $K --out $OUT/zero_scaling.json --markdown $OUT/zero_scaling.md \
  --command "bash eval/gpu/zero_scaling.sh (PARTS=$PARTS STEPS=$STEPS K=$K CPU_STEPS=$CPU_STEPS COMPILE=$COMPILE BATCH=${BATCH:-config})" 2>&1 | tee -a $LOG
[ -f $OUT/zero_scaling.json ] && python3 eval/zero_table.py --plan $OUT/zero_scaling.json --markdown $OUT/zero_plan.md \
  > /dev/null 2>> $LOG
tar czf $OUT/zero_logs.tgz -C $LOGS .
say "done"
