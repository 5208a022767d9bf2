set -x
source eval/gpu/env.sh || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import datasets, transformers, torch; print(datasets.__version__, transformers.__version__, torch.__version__)" || exit
# one run of the 125M config (3 min of steps), loss curve + tokens/s + MFU
timeout 330 python3 recipes/train_text.py --config recipes/configs/gpt2_125m.yaml --dataset .data/shakespeare_bible \
  --max_steps 300 --eval_steps 100 --save_steps 300 --output_dir runs/gpt2_125m 2>&1 | grep -v "it/s\]" | tee $OUT/train125m.log | tail -40
cp runs/gpt2_125m/checkpoint-*/trainer_state.json $OUT/trainer_state_125m.json
cp runs/gpt2_125m/eval_metrics.json $OUT/eval_125m.json
# training throughput: our model vs ModernBERT, compile off/on
timeout 200 python3 eval/bench_train.py --sizes 125m 350m --batch 32 16 --steps 15 --warmup 4 --compile both --out $OUT/bench_train.json 2>&1 | grep -v Warning | tail -20
ls runs/gpt2_125m
