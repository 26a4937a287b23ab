#!/bin/sh
# Extract query and gallery features of every model in MODELS into FEATURES_DIR
# (query_<name>.pkl, gallery_<name>.pkl), stopping at the first failure.
#
# Environment:
#   MODELS        space-separated name:config:checkpoint triples; an empty config ("name::ckpt")
#                 uses the config stored in the checkpoint. Names starting with "mgn" run
#                 `python -m mgn_model extract`, the others `python -m global_model extract`.
#                 Default: the models `make demo` trains.
#   DATA_ROOT     dataset folder with the query/gallery split (outputs/demo/data)
#   FEATURES_DIR  output folder (outputs/demo/features)
#   PYTHON        interpreter (python)
#   EXTRACT_ARGS  extra arguments for every extract call, e.g. "--format npz" or "TEST.FLIP False"
set -e

PYTHON=${PYTHON:-python}
DATA_ROOT=${DATA_ROOT:-outputs/demo/data}
FEATURES_DIR=${FEATURES_DIR:-outputs/demo/features}
D=outputs/demo/models
MODELS=${MODELS:-"r18:global_model/configs/tiny_cpu.yml:$D/r18/model_final.pth \
seres18:global_model/configs/tiny_cpu_seresnet.yml:$D/seres18/model_final.pth \
mgn_r18:mgn_model/configs/mgn_tiny.yml:$D/mgn_r18/model_final.pth \
sjdl_r18:global_model/configs/sjdl_tiny.yml:$D/sjdl_r18/model_final.pth"}

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
    case $name in
        mgn*) module=mgn_model ;;
        *) module=global_model ;;
    esac
    echo "$name: $module extract --weights $weights${config:+ --config $config}"
    # shellcheck disable=SC2086  # EXTRACT_ARGS is a list of words
    if [ -n "$config" ]; then
        "$PYTHON" -m "$module" extract --config "$config" --weights "$weights" --data-root "$DATA_ROOT" \
            --out-dir "$FEATURES_DIR" --name "$name" --no-progress $EXTRACT_ARGS || fail "$name: extraction failed"
    else
        "$PYTHON" -m "$module" extract --weights "$weights" --data-root "$DATA_ROOT" \
            --out-dir "$FEATURES_DIR" --name "$name" --no-progress $EXTRACT_ARGS || fail "$name: extraction failed"
    fi
    count=$((count + 1))
done
[ "$count" -gt 0 ] || fail "MODELS is empty"
echo "extracted $count model(s) into $FEATURES_DIR"
