#!/bin/sh
# End-to-end demo on CPU (`make demo`), the way a competition team runs its main job: synthetic data
# -> train the demo models on the training identities minus a validation split -> extract validation,
# test and training features (plus features of SJDL-defogged images) -> `ensemble tune` on the
# validation split (fusion weights, model subset, then query expansion, DBA, metric learning, camera
# penalty, re-ranking and track distance, each kept only if it gains there) -> `ensemble fuse` applies
# the chosen pipeline to the test split -> validate -> rank-list and CMC pictures. Re-running reuses
# the dataset (same seed and size) and finished checkpoints. Settings (environment):
#   DEMO_OUT     output folder (outputs/demo)       DEMO_SEED  dataset seed (0)
#   DEMO_IDS     identities (420)                   DEMO_TEST_IDS  of which test identities (120)
#   DEMO_VAL_IDS training identities held out for validation (60)
#   DEMO_MODELS  "name:config ..." models to train and fuse (`python -m global_model train`; the
#                config picks the family and whether it validates while training)
#   DEMO_DEFOG   models also extracted from SJDL-defogged images ("r18": member r18@defog)
#   DEMO_DEFOGGER  the SJDL model of DEMO_MODELS that defogs them (sjdl_r18)
#   DEMO_BUDGET  pipelines `ensemble tune` may score (80)
#   DEMO_TRAIN_ARGS  extra KEY VALUE overrides for every train (e.g. "SOLVER.MAX_EPOCHS 1" for a smoke run)
#   DEMO_JOBS    models trained (and extracted) at once, each with cores/DEMO_JOBS threads (2; 1 runs
#                them one after the other with every core, as the demo did before: scripts/jobs.sh)
#   PYTHON       interpreter (python)
set -e
. "$(dirname "$0")/demo_models.sh"
. "$(dirname "$0")/jobs.sh"

PYTHON=${PYTHON:-python}
OUT=${DEMO_OUT:-outputs/demo}
SEED=${DEMO_SEED:-0}
IDS=${DEMO_IDS:-420}
TEST_IDS=${DEMO_TEST_IDS:-120}
VAL_IDS=${DEMO_VAL_IDS:-60}
DEMO_MODELS=${DEMO_MODELS:-$DEMO_MODEL_LIST}
DEFOG=${DEMO_DEFOG-$DEMO_DEFOG_LIST}
DEFOGGER=${DEMO_DEFOGGER:-$DEMO_DEFOGGER_NAME}
BUDGET=${DEMO_BUDGET:-80}
jobs_init "${DEMO_JOBS:-2}"
trap jobs_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
DATA="$OUT/data"
FEATURES="$OUT/features"
start=$(date +%s)
last=$start
# Training numerics depend on the CPU (bf16 autocast where it is native, oneDNN's kernels per
# instruction set) and the thread count: printed so that two runs' tables can be compared.
(
    [ "$JOBS_MAX" -eq 1 ] || export OMP_NUM_THREADS="$JOBS_THREADS"  # as each job gets it
    "$PYTHON" -c "import os, torch; from global_model.engine.amp import resolve_amp; print(f'cpu: {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads per job, $JOBS_MAX job(s) at once, {os.cpu_count()} cores, training AMP: {resolve_amp(\"auto\", torch.device(\"cpu\")) or \"off\"}')"
)

say() { printf '\n== %s\n' "$*"; }
elapsed() { echo "$(( $(date +%s) - start )) s"; }
lap() { now=$(date +%s); echo "time: $1 $(( now - last )) s"; last=$now; }

say "1/7 synthetic dataset ($DATA, seed $SEED, $IDS ids of which $TEST_IDS test)"
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
lap synth

say "2/7 train the demo models on the training ids minus $VAL_IDS validation ids ($(elapsed) so far)"
job_done() {
    cat "$2"
    echo "time: train $1 $3 s"
}
MODELS=""
NAMES=""
for spec in $DEMO_MODELS; do
    name=${spec%%:*}; config=${spec#*:}
    dir="$OUT/models/$name"
    if [ -f "$dir/model_final.pth" ]; then
        echo "$name: $dir/model_final.pth exists; reusing it"
    else
        # The demo's configs do not validate while training (the tables below score every model),
        # except SJDL's, which measures its restoration at the last epoch. DATASETS.VAL_IDS holds the
        # same identities out of every training set; the checkpoint's config keeps it for extract.
        echo "$name: global_model train --config $config DATASETS.VAL_IDS $VAL_IDS"
        mkdir -p "$dir"
        # shellcheck disable=SC2086  # DEMO_TRAIN_ARGS is a list of words
        jobs_start "$name" "$dir/train.out" "$PYTHON" -m global_model train --config "$config" --no-progress \
            DATASETS.ROOT "$DATA" OUTPUT_DIR "$dir" DATASETS.VAL_IDS "$VAL_IDS" ${DEMO_TRAIN_ARGS:-}
        [ "$JOBS_MAX" -gt 1 ] || lap "train $name"
    fi
    # No config: extract rebuilds each model from the config its checkpoint stores (with its VAL_IDS).
    MODELS="$MODELS $name::$dir/model_final.pth"
    NAMES="${NAMES:+$NAMES,}$name"
done
jobs_wait_all
[ "$JOBS_MAX" -eq 1 ] || lap "train ($JOBS_MAX at a time)"
for name in $DEFOG; do
    [ -f "$OUT/models/$name/model_final.pth" ] || { echo "DEMO_DEFOG: $name is not in DEMO_MODELS" >&2; exit 1; }
    MODELS="$MODELS $name@defog::$OUT/models/$name/model_final.pth"
    NAMES="$NAMES,$name@defog"
done

say "3/7 extract validation, test and training features of $NAMES ($(elapsed) so far)"
# One run per model writes val_query/val_gallery (validation), query/gallery (test) and train
# (metric learning) files; <name>@defog models see the images $DEFOGGER restored.
MODELS="$MODELS" DATA_ROOT="$DATA" FEATURES_DIR="$FEATURES" PYTHON="$PYTHON" \
    DEFOG_WITH="$OUT/models/$DEFOGGER/model_final.pth" EXTRACT_ARGS="--split val --split all" \
    JOBS="$JOBS_MAX" sh scripts/extract_feature_val.sh
lap extract

say "4/7 tune on the validation split: fusion weights, then each post-processing step ($(elapsed) so far)"
# Coordinate ascent; a step is kept only if it gains on validation. Never reads a test feature file.
ensemble tune --split val --val-ids "$VAL_IDS" --search ascent --budget "$BUDGET" --models "$NAMES" \
    --data-root "$DATA" --features-dir "$FEATURES" --out "$OUT/pipeline.yaml"
lap tune

say "5/7 apply the chosen pipeline to the test split ($(elapsed) so far)"
# "mAP foggy q" scores the foggy queries alone (the dataset marks them): compare sjdl_r18 with r18.
ensemble fuse --pipeline "$OUT/pipeline.yaml" --data-root "$DATA" --features-dir "$FEATURES" \
    --out "$OUT/track2.txt" --metrics-out "$OUT/metrics.json"
# Models that measure a restoration (SJDL) log it as "SJDL final ..." at their last epoch.
for spec in $DEMO_MODELS; do
    name=${spec%%:*}
    grep -h "SJDL final" "$OUT/models/$name/log.txt" 2>/dev/null | tail -1 | sed "s/^[0-9:]* SJDL final/$name restoration/"
done
lap fuse

say "6/7 validate the submission"
ensemble validate "$OUT/track2.txt" --data-root "$DATA"

say "7/7 pictures"
ensemble visualize "$OUT/track2.txt" --data-root "$DATA" --out "$OUT/ranklist.png" \
    --cmc-out "$OUT/cmc.png" --metrics "$OUT/metrics.json"
lap "validate+pictures"

say "done in $(elapsed)"
cat <<EOF2
  dataset        $DATA  (AIC20 layout with ground truth; summary.json)
  checkpoints    $OUT/models/<name>/model_final.pth  ($NAMES)
  features       $FEATURES/{val_query,val_gallery,query,gallery,train}_<name>.pkl
  pipeline       $OUT/pipeline.yaml  (chosen on validation, with its validation table)
  submission     $OUT/track2.txt  (validated)
  metrics        $OUT/metrics.json  (validation table, test rows, the dropped steps on test)
  rank list      $OUT/ranklist.png
  CMC curves     $OUT/cmc.png
EOF2
