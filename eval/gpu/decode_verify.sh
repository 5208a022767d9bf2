# One-GPU follow-up of the decoding benchmark (issue 17): the GPU tests of the graphed sampler paths, then the
# 125M MDM of eval/gpu/decode_train.sh retrained (same recipe, STEPS) and eval/decode_bench.py at batch 1 on the
# rows ROWS (default: graphs, verify — replayed as CUDA graphs —, dual, uncached; in this order, as time allows) at
# the lengths LENGTHS. Returns decode_verify.tgz (results.json, samples, logs) and run.log.
#   run(command="STEPS=1500 bash eval/gpu/decode_verify.sh", kind="nvidia-h200", carry=[".whl", ".data/shakespeare_bible.tgz"])
# Options: TESTS="tests" runs every GPU test (default: the graphed paths' two files); B64_ROWS="..." also runs those
# rows at batch 64 (one timed run, lengths B64_LENGTHS, default 512: the samples to judge, eval/decode_bench.py
# --judge-only); PROFILE=1 ends with eval/profile_gpu.py decode at batch 1, 512 tokens (profile_b1.txt).
# The 2026-11-30 run of the CUDA graphs captured once per generation (docs/benchmarks/decoding.md):
#   TESTS=tests ROWS="graphs graphs+per_block dual dual+per_block dual+threshold dual+eb" DEADLINE=585 \
#   B64_ROWS="graphs dual dual+threshold dual+eb" PROFILE=1 STEPS=1500 bash eval/gpu/decode_verify.sh
#   DRY=1 bash eval/gpu/decode_verify.sh   # CPU dry run here: tiny model, 3 steps, ~2 min
OUT=${OUT:-out_decode_verify}; DEADLINE=${DEADLINE:-570}
source eval/gpu/common.sh
STEPS=${STEPS:-1500}; SEQ_LEN=1088; RUNS=${RUNS:-runs/decode/s$STEPS}; W=${WORK:-runs/decode_verify}
ROWS=${ROWS:-"graphs verify dual uncached"}; LENGTHS=${LENGTHS:-"512 1024"}
if [ ! -d .data/shakespeare_bible ] && [ -f .data/shakespeare_bible.tgz ]; then tar xzf .data/shakespeare_bible.tgz -C .data; fi
C="--config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible --seq_len $SEQ_LEN --max_steps $STEPS
   --per_device_train_batch_size 32 --eval_strategy no --save_strategy no --logging_steps 50 --sample_on_end 0 --seed 0"
DEV="--device cuda --dtype bf16"; B1="--batch-size 1 --repeats 3 --max-seconds-per-row 25"
if [ "${DRY:-0}" = 1 ]; then
  [ -f .data/shakespeare_bible/dataset_dict.json ] || python3 recipes/build_corpus.py --dataset shakespeare+bible --out .data/shakespeare_bible | tail -n 1
  STEPS=3; RUNS=$(mktemp -d); W=$(mktemp -d); LENGTHS=32; DEV="--device cpu --threads 1"; B1="--batch-size 1 --repeats 1"
  C="--config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible --seq_len 128 --max_steps 3
     --hidden_size 64 --num_hidden_layers 2 --num_attention_heads 2 --intermediate_size 128
     --per_device_train_batch_size 4 --per_device_eval_batch_size 4 --max_eval_sequences 8 --bf16 false
     --torch_compile false --dataloader_num_workers 0 --use_cpu true --eval_strategy no --save_strategy no
     --logging_steps 1 --sample_on_end 0 --seed 0"
fi
need_files "carry .data/shakespeare_bible.tgz" .data/shakespeare_bible/dataset_dict.json
mkdir -p $W
if [ "${DRY:-0}" != 1 ]; then
  say "GPU tests of the graphed sampler paths: start"
  run_for 400 python3 -m pytest -q -m gpu -p no:cacheprovider ${TESTS:-tests/test_cuda_graphs.py tests/test_policies_verify.py} \
    > $W/gpu_tests.log 2>&1
  say "GPU tests: $(tail -n 1 $W/gpu_tests.log)"
fi
ensure_mdm 120
say "decode_bench b1 ($ROWS) at $LENGTHS: start"
run_for 15 python3 eval/decode_bench.py --model $RUNS/mdm --out $W/b1 --overwrite --block-length 32 --rows $ROWS \
  --gen-length $LENGTHS $B1 $DEV --no-judge > $W/b1.log 2>&1
say "decode_bench: exit $?"
grep "^|" $W/b1.log | tee -a $LOG
if [ -n "${B64_ROWS:-}" ]; then
  B64="--batch-size 64 --repeats 1 --max-seconds-per-row 60"; B64_LENGTHS=${B64_LENGTHS:-512}
  [ "${DRY:-0}" = 1 ] && B64="--batch-size 4 --repeats 1" && B64_LENGTHS=32
  say "decode_bench b64 ($B64_ROWS) at $B64_LENGTHS: start"
  run_for 15 python3 eval/decode_bench.py --model $RUNS/mdm --out $W/b64 --overwrite --block-length 32 --rows $B64_ROWS \
    --gen-length $B64_LENGTHS $B64 $DEV --no-judge > $W/b64.log 2>&1
  say "decode_bench b64: exit $?"
  grep "^|" $W/b64.log | tee -a $LOG
fi
if [ "${PROFILE:-0}" = 1 ] && [ "${DRY:-0}" != 1 ]; then
  say "profile of decoding (random 125M weights, batch 1, 512 tokens, block 32): start"
  run_for 10 python3 eval/profile_gpu.py decode --size 125m --batch 1 --gen-length 512 --block-length 32 \
    > $W/profile_b1.txt 2>&1
  say "profile: exit $? | $(grep -E '^generate|graph replay' $W/profile_b1.txt | tr '\n' ';')"
fi
tar czf $OUT/decode_verify.tgz -C $W . && say "done"
