# Issue 6 item 4b/4c: Fast-dLLM block KV cache (dual / prefix) vs LLaDA-style uncached decoding, 1 GPU.
# A 125M base is trained briefly on Shakespeare+Bible unless runs/base125 already holds a checkpoint,
# then eval/bench_cache.py runs baseline / dual / threshold 0.9 / dual+threshold 0.9 / prefix (+threshold)
# at gen length 256 and 512, block 32, bf16, batch $BATCH (default 64: at batch 8 a 125M model is bound by
# kernel launches, ~15 ms per forward whatever its size, so fewer positions buy no time). Carried: .whl,
# .data/shakespeare_bible. Writes under $OUT: bench_cache/results.json and bench_cache_samples.tgz
# (samples/G{G}_{run}.jsonl; score later on the CPU with eval/genppl.py). A 300-step base is weak (max
# token probability < 0.3, so threshold 0.9 never fires): BASE_STEPS=2000 for meaningful threshold rows.
source eval/gpu/env.sh || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import transformers, torch; print('transformers', transformers.__version__, 'torch', torch.__version__)" || exit
BASE=${BASE:-runs/base125}; BASE_STEPS=${BASE_STEPS:-300}; BATCH=${BATCH:-64}; REPEATS=${REPEATS:-1}
if [ ! -f $BASE/config.json ]; then
  echo "=== base: gpt2_125m, $BASE_STEPS steps"
  timeout 600 python3 recipes/train_text.py --config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible \
    --torch_compile false --max_steps $BASE_STEPS --eval_strategy no --save_strategy no --logging_steps 50 \
    --output_dir $BASE 2>&1 | tr '\r' '\n' | grep -E "^step |'loss'|rror" | tail -6
  ls $BASE/config.json || exit 1
fi
echo "=== bench_cache"
timeout 540 python3 eval/bench_cache.py --model $BASE --gen-length 256 512 --block-length 32 --batch-size $BATCH \
  --repeats $REPEATS --device cuda --dtype bf16 --out $OUT/bench_cache 2>&1 | grep -v "Loading weights"
tar czf $OUT/bench_cache_samples.tgz -C $OUT/bench_cache samples && rm -rf $OUT/bench_cache/samples
