#!/usr/bin/env bash
# The paper at full scale: 4 GLUE tasks × {pretrained, scratch} with the BERT GLUE recipe
# (experiment=paper: lr 2e-5 / 1e-4, batch 32, 3 epochs, a snapshot every step), then
#   1D curves   J(θ0 + α·δ1) of every run, and
#   2D surfaces J(θ0 + α·δ1 + β·δ2), δ2 = θ2 − θ0 with θ2 the same θ0 trained on another task,
# each grid split into NUM_SHARDS multirun jobs (job n → GPU n mod #GPUs).
set -euo pipefail
OUT=${OUT:-outputs/paper}
MODEL=${MODEL:-bert_base}
LAUNCHER=${LAUNCHER:-joblib}
NUM_SHARDS=${NUM_SHARDS:-$(python -c 'import torch; print(max(1, torch.cuda.device_count()))')}
SHARDS=$(seq -s, 0 $((NUM_SHARDS - 1)))
# extra overrides, e.g. a smoke run: EXTRA_TRAIN="data.max_train_samples=32 trainer.max_epochs=1"
read -r -a EXTRA_TRAIN <<< "${EXTRA_TRAIN:-}"
read -r -a EXTRA_LANDSCAPE <<< "${EXTRA_LANDSCAPE:-}"
read -r -a EXTRA_LINE <<< "${EXTRA_LINE:-}"    # 1D curves only, e.g. grid.x.num=41
read -r -a EXTRA_PLANE <<< "${EXTRA_PLANE:-}"  # 2D surfaces only, e.g. grid.y.num=41

bertviz-train -m experiment=paper model="$MODEL" task=mrpc,rte,stsb,sst2 init=pretrained,scratch \
  hydra/launcher="$LAUNCHER" hydra.sweep.dir="$OUT/runs" 'hydra.sweep.subdir=${task.name}_${init.name}' \
  "${EXTRA_TRAIN[@]}"

surface() {  # surface <task> <init> <grid> [theta2 run]
  local task=$1 init=$2 grid=$3 run="$OUT/runs/$1_$2" extra=()
  if [ $# -ge 4 ]; then
    extra=(run2="$OUT/runs/$4" directions.rescale_y=true "${EXTRA_PLANE[@]}")
  else
    extra=("${EXTRA_LINE[@]}")
  fi
  bertviz-landscape -m run="$run" grid="$grid" \
    "${extra[@]}" shard="$SHARDS" num_shards="$NUM_SHARDS" hydra/launcher="$LAUNCHER" \
    output="$OUT/surfaces/${task}_${init}.${grid}.h5" "${EXTRA_LANDSCAPE[@]}"
}

for task in mrpc rte stsb sst2; do
  for init in pretrained scratch; do
    surface "$task" "$init" line
  done
done
# 2D on the paper's axes; the other task must share θ0 and the head's shape (STS-B's head has 1 output)
for init in pretrained scratch; do
  surface mrpc "$init" plane "rte_$init"
  surface rte "$init" plane "mrpc_$init"
  surface sst2 "$init" plane "mrpc_$init"
done
# the analyses (numbers as JSON), then every figure and the claim-by-claim report
analyze() {  # analyze <analysis> <task> <init> [overrides...]
  local name=$1 task=$2 init=$3; shift 3
  bertviz-analyze analysis="$name" run="$OUT/runs/${task}_${init}" output="$OUT/analysis/${name}_${task}_${init}.json" "$@"
}
for task in mrpc rte stsb sst2; do
  for init in pretrained scratch; do
    analyze flatness "$task" "$init" surface="$OUT/surfaces/${task}_${init}.line.h5"
    analyze layers "$task" "$init"
    if [ "$task" != stsb ]; then
      analyze trajectory "$task" "$init" surface="$OUT/surfaces/${task}_${init}.plane.h5"
      analyze consistency "$task" "$init" surface="$OUT/surfaces/${task}_${init}.plane.h5"
    fi
  done
done
bertviz-plot results="$OUT" wandb.enabled=true
echo "surfaces in $OUT/surfaces, numbers in $OUT/analysis, figures in $OUT/figures, report: $OUT/report.html"
