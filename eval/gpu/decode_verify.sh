# One-GPU follow-up of the decoding benchmark (issue 17): the GPU tests of the graphed sampler paths, then the
# 125M MDM of eval/gpu/decode_train.sh retrained (same recipe, STEPS) and eval/decode_bench.py at batch 1 on the
# rows ROWS (default: graphs, verify — replayed as CUDA graphs —, dual, uncached; in this order, as time allows) at
# the lengths LENGTHS. Returns decode_verify.tgz (results.json, samples, logs) and run.log.
#   run(command="STEPS=1500 bash eval/gpu/decode_verify.sh", kind="nvidia-h200", carry=[".whl", ".data/shakespeare_bible.tgz"])
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
  run_for 400 python3 -m pytest -q -m gpu -p no:cacheprovider tests/test_cuda_graphs.py tests/test_policies_verify.py \
    > $W/gpu_tests.log 2>&1
  say "GPU tests: $(tail -n 1 $W/gpu_tests.log)"
fi
if [ -f $RUNS/mdm/config.json ]; then say "MDM kept from an earlier call ($RUNS/mdm)"; else
  say "train the MDM ($STEPS steps): start"
  run_for 120 python3 recipes/train_text.py $C --output_dir $RUNS/mdm > $W/train_mdm.log 2>&1
  say "train: exit $? | $(grep -E 'validation ELBO|rror' $W/train_mdm.log | tail -1)"
fi
need_files "the MDM did not train (see $W/train_mdm.log)" $RUNS/mdm/config.json
say "decode_bench b1 ($ROWS) at $LENGTHS: start"
run_for 15 python3 eval/decode_bench.py --model $RUNS/mdm --out $W/b1 --overwrite --block-length 32 --rows $ROWS \
  --gen-length $LENGTHS $B1 $DEV --no-judge > $W/b1.log 2>&1
say "decode_bench: exit $?"
grep "^|" $W/b1.log | tee -a $LOG
tar czf $OUT/decode_verify.tgz -C $W . && say "done"
