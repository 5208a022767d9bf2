# The MDM-vs-AR gap at 125M (issue 19 item 4), one call on 2×H200: the same transformer (recipes/configs/gpt2_125m.yaml)
# trained as a masked-diffusion model on GPU 0 and as an autoregressive model (--objective ar) on GPU 1, with the same
# data (.data/english_mix: Wikipedia summaries + GCIDE + fortunes + KJV + Shakespeare, ~13.3M GPT-2 tokens of training text, built by
#   python -c "from mdlm.data.english import load_english; load_english('wiki+gcide+fortunes+bible+shakespeare').save_to_disk('.data/english_mix')"
#   tar czf .data/english_mix.tgz -C .data english_mix      # 18 MB
# ), tokens, optimiser and schedule; validation every EVAL_STEPS on the same 256 × 1024 held-out tokens (exact NLL for
# AR, the Monte-Carlo NELBO bound for the MDM). The MDM run is also the 125M MFU measurement of the recipe itself.
#   run(command="bash eval/gpu/ar_vs_mdm.sh", kind="nvidia-h200-x2", carry=[".whl", ".data/english_mix.tgz"])
#   DRY=1 bash eval/gpu/ar_vs_mdm.sh    # CPU dry run here: tiny models, 6 steps
# Budget (H200, batch 64 × 1024): tokenising ~30 s, compile ~60 s, MDM ~0.13 s/step, AR ~0.16 s/step.
OUT=${OUT:-out_ar_vs_mdm}; DEADLINE=${DEADLINE:-575}
source eval/gpu/common.sh
if [ ! -d .data/english_mix ] && [ -f .data/english_mix.tgz ]; then tar xzf .data/english_mix.tgz -C .data; fi
need_files "carry .data/english_mix.tgz (see the header)" .data/english_mix/dataset_dict.json
STEPS=${STEPS:-2000}; EVAL_STEPS=${EVAL_STEPS:-250}; R=${RUNS:-/tmp/ar_vs_mdm}; rm -rf $R; mkdir -p $R
C="--config recipes/configs/gpt2_125m.yaml --dataset .data/english_mix --max_steps $STEPS --eval_strategy steps
   --eval_steps $EVAL_STEPS --save_strategy no --logging_steps 50 --sample_on_end 0 --disable_tqdm true
   --max_eval_sequences 256 --eval_num_samples 4"
if [ "${DRY:-0}" = 1 ]; then
  C="--config recipes/configs/gpt2_125m.yaml --dataset .data/english_mix --max_steps 6 --eval_strategy steps
     --eval_steps 3 --save_strategy no --logging_steps 1 --sample_on_end 0 --disable_tqdm true --max_train_documents 400
     --hidden_size 64 --num_hidden_layers 2 --num_attention_heads 2 --intermediate_size 128 --seq_len 128
     --per_device_train_batch_size 4 --per_device_eval_batch_size 4 --max_eval_sequences 8 --eval_num_samples 2
     --bf16 false --torch_compile false --dataloader_num_workers 0 --use_cpu true"
fi
say "MDM on GPU 0: start"
CUDA_VISIBLE_DEVICES=0 run_for 25 python3 recipes/train_text.py $C --output_dir $R/mdm > $OUT/mdm.log 2>&1 &
MDM=$!
for i in $(seq 120); do grep -q "^model:" $OUT/mdm.log 2>/dev/null && break; sleep 1; done  # tokenised once, cached
say "AR on GPU 1: start"
CUDA_VISIBLE_DEVICES=1 run_for 25 python3 recipes/train_text.py $C --objective ar --output_dir $R/ar > $OUT/ar.log 2>&1
echo "exit $?" >> $OUT/ar.log
wait $MDM; echo "exit $?" >> $OUT/mdm.log
for n in mdm ar; do say "$n: $(grep -E '^throughput over|^validation|^exit' $OUT/$n.log | tr '\n' ' ')"; done
TPS=$(python3 -c "import json;a=json.load(open('$R/mdm/training_args.json'));print(a['per_device_train_batch_size']*a['gradient_accumulation_steps'])")
SEQ=$(python3 -c "import json;print(json.load(open('$R/mdm/config.json')).get('max_position_embeddings'))")
cp $R/mdm/trainer_state.json $OUT/mdm_trainer_state.json; cp $R/ar/trainer_state.json $OUT/ar_trainer_state.json
cp $R/mdm/eval_metrics.json $OUT/mdm_eval_metrics.json; cp $R/ar/eval_metrics.json $OUT/ar_eval_metrics.json
python3 eval/ar_vs_mdm.py --ar $OUT/ar_trainer_state.json --mdm $OUT/mdm_trainer_state.json \
  --tokens-per-step $((TPS * ${SEQ_LEN:-$( [ "${DRY:-0}" = 1 ] && echo 128 || echo 1024)})) --json $OUT/ar_vs_mdm.json \
  --png $OUT/ar_vs_mdm.png 2>&1 | tee -a $OUT/run.log
say "done"
