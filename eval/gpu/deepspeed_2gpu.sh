# DeepSpeed on 2×H200: ZeRO-2 and ZeRO-3 train → save → resume (125M), and ZeRO-2 scaling 1→2 GPUs (350M).
source eval/gpu/env.sh || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv; which deepspeed || exit 1
C="--dataset .data/shakespeare_bible --torch_compile false --logging_steps 5 --eval_strategy no --max_eval_sequences 64"
run() { name=$1; shift; echo "=== $name"; timeout 240 deepspeed "$@" 2>&1 | tr '\r' '\n' | grep -E "^step |validation|error|Error|resum|Resum|memory|\{'train_runtime" | tail -14; }
for z in 2 3; do
  run "zero$z 2gpu part 1" --num_gpus 2 recipes/train_text.py --config recipes/configs/gpt2_125m.yaml $C --deepspeed recipes/deepspeed/zero$z.json --max_steps 20 --save_steps 20 --output_dir runs/z$z
  ls runs/z$z/checkpoint-20 | tr '\n' ' '; echo
  run "zero$z 2gpu resume" --num_gpus 2 recipes/train_text.py --config recipes/configs/gpt2_125m.yaml $C --deepspeed recipes/deepspeed/zero$z.json --max_steps 40 --save_steps 20 --output_dir runs/z$z --resume_from_checkpoint auto
  python3 -c "import json;s=json.load(open('runs/z$z/checkpoint-40/trainer_state.json'));print('zero$z log:',[(h['step'],h['loss']) for h in s['log_history'] if 'loss' in h])"
  cp runs/z$z/checkpoint-40/trainer_state.json $OUT/trainer_state_zero$z.json
done
for n in 1 2; do
  run "350m zero2 ${n}gpu" --num_gpus $n recipes/train_text.py --config recipes/configs/gpt2_350m.yaml $C --deepspeed recipes/deepspeed/zero2.json --max_steps 30 --save_strategy no --output_dir runs/s$n
done
