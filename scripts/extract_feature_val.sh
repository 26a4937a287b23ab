#!/bin/sh
# Extract query and gallery features of every model in MODELS into FEATURES_DIR
# (query_<name>.pkl, gallery_<name>.pkl), stopping at the first failure.
#
# Environment:
#   MODELS        space-separated name:config:checkpoint triples; an empty config ("name::ckpt")
#                 uses the config stored in the checkpoint (its MODEL.META_ARCH picks the family).
#                 Default: the models `make demo` trains.
#   DATA_ROOT     dataset folder with the query/gallery split (outputs/demo/data)
#   FEATURES_DIR  output folder (outputs/demo/features)
#   PYTHON        interpreter (python)
#   EXTRACT_ARGS  extra arguments for every extract call, e.g. "--format npz" or "TEST.FLIP False"
set -e
. "$(dirname "$0")/demo_models.sh"

PYTHON=${PYTHON:-python}
DATA_ROOT=${DATA_ROOT:-outputs/demo/data}
FEATURES_DIR=${FEATURES_DIR:-outputs/demo/features}
if [ -z "${MODELS:-}" ]; then
    for spec in $DEMO_MODEL_LIST; do
        MODELS="${MODELS:-} $spec:outputs/demo/models/${spec%%:*}/model_final.pth"
    done
fi

fail() {
    echo "extract_feature_val.sh: $*" >&2
    exit 1
}

[ -d "$DATA_ROOT" ] || fail "DATA_ROOT $DATA_ROOT is not a folder"
count=0
for entry in $MODELS; do
    name=${entry%%:*}
    rest=${entry#*:}
    config=${rest%%:*}
    weights=${rest#*:}
    case $entry in
        *:*:*:*|:*) fail "bad MODELS entry '$entry': expected name:config:checkpoint" ;;
        *:*:*) ;;
        *) fail "bad MODELS entry '$entry': expected name:config:checkpoint" ;;
    esac
    [ -f "$weights" ] || fail "$name: checkpoint $weights not found"
    echo "$name: global_model extract --weights $weights${config:+ --config $config}"
    # shellcheck disable=SC2086  # EXTRACT_ARGS is a list of words
    if [ -n "$config" ]; then
        "$PYTHON" -m global_model extract --config "$config" --weights "$weights" --data-root "$DATA_ROOT" \
            --out-dir "$FEATURES_DIR" --name "$name" --no-progress $EXTRACT_ARGS || fail "$name: extraction failed"
    else
        "$PYTHON" -m global_model extract --weights "$weights" --data-root "$DATA_ROOT" \
            --out-dir "$FEATURES_DIR" --name "$name" --no-progress $EXTRACT_ARGS || fail "$name: extraction failed"
    fi
    count=$((count + 1))
done
[ "$count" -gt 0 ] || fail "MODELS is empty"
echo "extracted $count model(s) into $FEATURES_DIR"
