#!/bin/sh
# End-to-end demo on CPU (`make demo`): synthetic data -> train the demo models -> extract features
# -> `ensemble fuse` (camera penalty, camera-aware re-ranking, track distance) -> validate ->
# rank-list and CMC pictures. Re-running reuses the dataset (same seed and size) and finished
# checkpoints. Settings (environment):
#   DEMO_OUT     output folder (outputs/demo)       DEMO_SEED  dataset seed (0)
#   DEMO_IDS     identities (420)                   DEMO_TEST_IDS  of which test identities (120)
#   DEMO_MODELS  "name:config ..." models to train and fuse (`python -m global_model train`; the
#                config picks the family and whether it validates while training)
#   PYTHON       interpreter (python)
set -e
. "$(dirname "$0")/demo_models.sh"

PYTHON=${PYTHON:-python}
OUT=${DEMO_OUT:-outputs/demo}
SEED=${DEMO_SEED:-0}
IDS=${DEMO_IDS:-420}
TEST_IDS=${DEMO_TEST_IDS:-120}
DEMO_MODELS=${DEMO_MODELS:-$DEMO_MODEL_LIST}
DATA="$OUT/data"
FEATURES="$OUT/features"
start=$(date +%s)

say() { printf '\n== %s\n' "$*"; }
elapsed() { echo "$(( $(date +%s) - start )) s"; }

say "1/6 synthetic dataset ($DATA, seed $SEED, $IDS ids of which $TEST_IDS test)"
if [ -f "$DATA/summary.json" ] && "$PYTHON" -c "
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit((s['seed'], s['ids']['train'] + s['ids']['test'], s['ids']['test']) != tuple(map(int, sys.argv[2:])))
" "$DATA/summary.json" "$SEED" "$IDS" "$TEST_IDS"; then
    echo "already generated with these settings; reusing it"
    "$PYTHON" -c "import json,sys; from global_model.data.synth import format_summary; print(format_summary(json.load(open(sys.argv[1])), sys.argv[2]))" "$DATA/summary.json" "$DATA"
else
    "$PYTHON" -m global_model synth --out "$DATA" --seed "$SEED" --ids "$IDS" --test-ids "$TEST_IDS"
fi

say "2/6 train the demo models ($(elapsed) so far)"
MODELS=""
NAMES=""
for spec in $DEMO_MODELS; do
    name=${spec%%:*}; config=${spec#*:}
    dir="$OUT/models/$name"
    if [ -f "$dir/model_final.pth" ]; then
        echo "$name: $dir/model_final.pth exists; reusing it"
    else
        # The demo's configs do not validate while training (the fuse table below scores every
        # model), except SJDL's, which measures its restoration at the last epoch.
        echo "$name: global_model train --config $config"
        "$PYTHON" -m global_model train --config "$config" --no-progress DATASETS.ROOT "$DATA" OUTPUT_DIR "$dir"
    fi
    MODELS="$MODELS $name:$config:$dir/model_final.pth"
    NAMES="${NAMES:+$NAMES,}$name"
done

say "3/6 extract query/gallery features ($(elapsed) so far)"
MODELS="$MODELS" DATA_ROOT="$DATA" FEATURES_DIR="$FEATURES" PYTHON="$PYTHON" sh scripts/extract_feature_val.sh

say "4/6 fuse $NAMES, then camera penalty, re-ranking and track distance ($(elapsed) so far)"
# "mAP foggy q" scores the foggy queries alone (the dataset marks them): compare sjdl_r18 with r18.
# Tracks are used after re-ranking (track_distance), not before (track_average): averaged tracks
# put identical copies into every k-reciprocal neighbourhood and re-ranking then loses mAP.
ensemble fuse --models "$NAMES" --data-root "$DATA" --features-dir "$FEATURES" \
    --camera-penalty 0.3 --rerank --track-distance \
    --out "$OUT/track2.txt" --metrics-out "$OUT/metrics.json" --save-pipeline "$OUT/pipeline.yaml"
# Models that measure a restoration (SJDL) log it as "SJDL final ..." at their last epoch.
for spec in $DEMO_MODELS; do
    name=${spec%%:*}
    grep -h "SJDL final" "$OUT/models/$name/log.txt" 2>/dev/null | tail -1 | sed "s/^[0-9:]* SJDL final/$name restoration/"
done

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
