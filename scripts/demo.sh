#!/bin/sh
# End-to-end demo on CPU (`make demo`): synthetic data -> train the demo models -> extract features
# -> `ensemble fuse` with re-ranking -> validate -> rank-list and CMC pictures. Re-running reuses
# the dataset (same seed) and finished checkpoints. Settings (environment):
#   DEMO_OUT     output folder (outputs/demo)       DEMO_SEED  dataset seed (0)
#   DEMO_MODELS  "name:config ..." models to train and fuse; as in extract_feature_val.sh, names
#                starting with "mgn" are trained with `python -m mgn_model`, the others with global_model
#   PYTHON       interpreter (python)
set -e

PYTHON=${PYTHON:-python}
OUT=${DEMO_OUT:-outputs/demo}
SEED=${DEMO_SEED:-0}
DEMO_MODELS=${DEMO_MODELS:-"r18:global_model/configs/tiny_cpu.yml regnet:global_model/configs/tiny_cpu_regnet.yml"}
DATA="$OUT/data"
FEATURES="$OUT/features"
start=$(date +%s)

say() { printf '\n== %s\n' "$*"; }
elapsed() { echo "$(( $(date +%s) - start )) s"; }

say "1/6 synthetic dataset ($DATA, seed $SEED)"
if [ -f "$DATA/summary.json" ] && "$PYTHON" -c "import json,sys; sys.exit(json.load(open(sys.argv[1]))['seed'] != int(sys.argv[2]))" "$DATA/summary.json" "$SEED"; then
    echo "already generated with seed $SEED; reusing it"
    "$PYTHON" -c "import json,sys; from global_model.data.synth import format_summary; print(format_summary(json.load(open(sys.argv[1])), sys.argv[2]))" "$DATA/summary.json" "$DATA"
else
    "$PYTHON" -m global_model synth --out "$DATA" --seed "$SEED"
fi

say "2/6 train the demo models ($(elapsed) so far)"
MODELS=""
NAMES=""
for spec in $DEMO_MODELS; do
    name=${spec%%:*}; config=${spec#*:}
    case $name in
        mgn*) module=mgn_model ;;
        *) module=global_model ;;
    esac
    dir="$OUT/models/$name"
    if [ -f "$dir/model_final.pth" ]; then
        echo "$name: $dir/model_final.pth exists; reusing it"
    else
        echo "$name: $module train --config $config"
        # No validation while training: the fuse table below scores every model anyway.
        "$PYTHON" -m "$module" train --config "$config" --no-progress DATASETS.ROOT "$DATA" OUTPUT_DIR "$dir" \
            SOLVER.EVAL_PERIOD 0
    fi
    MODELS="$MODELS $name:$config:$dir/model_final.pth"
    NAMES="${NAMES:+$NAMES,}$name"
done

say "3/6 extract query/gallery features ($(elapsed) so far)"
MODELS="$MODELS" DATA_ROOT="$DATA" FEATURES_DIR="$FEATURES" PYTHON="$PYTHON" sh scripts/extract_feature_val.sh

say "4/6 fuse $NAMES with re-ranking ($(elapsed) so far)"
ensemble fuse --models "$NAMES" --data-root "$DATA" --features-dir "$FEATURES" \
    --rerank --out "$OUT/track2.txt" --metrics-out "$OUT/metrics.json" --save-pipeline "$OUT/pipeline.yaml"

say "5/6 validate the submission"
ensemble validate "$OUT/track2.txt" --data-root "$DATA"

say "6/6 pictures"
ensemble visualize "$OUT/track2.txt" --data-root "$DATA" --out "$OUT/ranklist.png" \
    --cmc-out "$OUT/cmc.png" --metrics "$OUT/metrics.json"

say "done in $(elapsed)"
cat <<EOF
  dataset        $DATA  (AIC20 layout with ground truth; summary.json)
  checkpoints    $OUT/models/<name>/model_final.pth  ($NAMES)
  features       $FEATURES/query_<name>.pkl, gallery_<name>.pkl
  submission     $OUT/track2.txt  (validated)
  metrics        $OUT/metrics.json  (table above: each model, the fusion, each step)
  pipeline       $OUT/pipeline.yaml  (re-run: ensemble fuse --pipeline $OUT/pipeline.yaml ...)
  rank list      $OUT/ranklist.png
  CMC curves     $OUT/cmc.png
EOF
