# LoRA SFT under DeepSpeed on NGPU GPUs (NGPU=2 on 2 GPUs, NGPU=1 on one): a 125M base trained
# briefly on Shakespeare+Bible (torchrun), then LoRA on the WordNet instruction set with ZeRO-3 and ZeRO-2 (tokens/s, peak
# memory per GPU), then base vs tuned on held-out words (eval/sft_eval.py).
# Carried: .whl (datasets, deepspeed, ...), .data/shakespeare_bible, .artifacts/wordnet/{train,heldout}.jsonl
# (60K train pairs / 2K held-out-word pairs written from mdlm.data.wordnet.build_wordnet_sft on a
# machine with Debian wordnet-base). Writes under $OUT.
source eval/gpu/env.sh || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv
BASE_STEPS=${BASE_STEPS:-300}; LORA_STEPS=${LORA_STEPS:-120}; NGPU=${NGPU:-2}
if [ -f runs/base125/config.json ]; then echo "=== base: reusing runs/base125 (left by eval/gpu/text_speed.sh)"; else
echo "=== base: gpt2_125m, $BASE_STEPS steps, torchrun $NGPU GPU(s)"
timeout 200 torchrun --nproc_per_node $NGPU recipes/train_text.py --config recipes/configs/gpt2_125m.yaml \
  --dataset .data/shakespeare_bible --torch_compile false --max_steps $BASE_STEPS --eval_strategy no \
  --save_strategy no --logging_steps 50 --max_eval_sequences 64 --output_dir runs/base125 2>&1 | tr '\r' '\n' \
  | grep -E "^step |validation|rror" | tail -8
fi
ls runs/base125 || exit 1
L="--base_model runs/base125 --config recipes/configs/wordnet_lora_gpu.yaml --data_files .artifacts/wordnet/train.jsonl \
  --eval_files .artifacts/wordnet/heldout.jsonl --max_eval_examples 512 --num_train_epochs 1 \
  --logging_steps 20 --eval_strategy no --save_strategy no --sample_on_end 0 --dataloader_num_workers 2"
for z in 3 2; do
  steps=$LORA_STEPS; [ $z = 2 ] && steps=${LORA_STEPS_Z2:-100}
  echo "=== LoRA zero$z $NGPU GPU(s)"
  timeout ${LORA_TIMEOUT:-200} deepspeed --num_gpus $NGPU recipes/sft_lora.py $L --max_steps $steps --deepspeed recipes/deepspeed/zero$z.json \
    --output_dir runs/lora_z$z 2>&1 | tr '\r' '\n' | grep -E "^LoRA|'loss'|eval_nll|rror" | tail -9
  ls runs/lora_z$z | tr '\n' ' '; echo
  cp runs/lora_z$z/eval_metrics.json $OUT/lora_z${z}_eval_metrics.json 2>/dev/null
done
EVAL_ADAPTER=${EVAL_ADAPTER:-runs/lora_z3}
echo "=== base vs tuned ($EVAL_ADAPTER) on held-out words"
timeout 150 python3 eval/sft_eval.py --base runs/base125 --adapter $EVAL_ADAPTER --eval-files .artifacts/wordnet/heldout.jsonl \
  --num-examples 200 --num-elbo 512 --out $OUT/sft_eval_gpu 2>&1 | tr '\r' '\n' | grep -v "Loading\|examples/s" | tail -40
