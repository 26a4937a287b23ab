#!/bin/sh
# Extract query and gallery features of every model in MODELS into FEATURES_DIR
# (query_<name>.pkl, gallery_<name>.pkl), stopping at the first failure.
#
# All models are extracted into a staging folder beside FEATURES_DIR first and moved into
# FEATURES_DIR only when every one succeeded: a failure (or Ctrl-C) leaves FEATURES_DIR as it was,
# never some models replaced and others not. The moves are renames on one file system, a model's
# files back to back; the fingerprint in each file lets `ensemble fuse` refuse a model whose files
# a crash during the moves still mixed.
#
# Environment:
#   MODELS        space-separated name:config:checkpoint triples; an empty config ("name::ckpt")
#                 uses the config stored in the checkpoint (its MODEL.META_ARCH picks the family).
#                 Default: the models `make demo` trains.
#   DATA_ROOT     dataset folder with the query/gallery split (outputs/demo/data)
#   FEATURES_DIR  output folder (outputs/demo/features)
#   PYTHON        interpreter (python)
#   EXTRACT_ARGS  extra arguments for every extract call, e.g. "--format npz", "--split val --split both"
#                 (the validation split and the test split in one run) or "TEST.FLIP False"
#   DEFOG_WITH    SJDL checkpoint: a model named <name>@defog extracts from the images that checkpoint
#                 restored (extract --defog-with), e.g. MODELS="r18:cfg:ckpt r18@defog:cfg:ckpt"
#   JOBS          models extracted at once, each with cores/JOBS threads (1: one after the other with
#                 every core, the output streamed; see scripts/jobs.sh)
set -e
. "$(dirname "$0")/demo_models.sh"
. "$(dirname "$0")/jobs.sh"

PYTHON=${PYTHON:-python}
DATA_ROOT=${DATA_ROOT:-outputs/demo/data}
FEATURES_DIR=${FEATURES_DIR:-outputs/demo/features}
if [ -z "${MODELS:-}" ]; then
    for spec in $DEMO_MODEL_LIST; do
        MODELS="${MODELS:-} $spec:outputs/demo/models/${spec%%:*}/model_final.pth"
    done
fi

STAGE=
fail() {
    echo "extract_feature_val.sh: $*" >&2
    exit 1
}
cleanup() {
    jobs_stop
    [ -z "$STAGE" ] || rm -rf "$STAGE"
}
job_done() {
    cat "$2"
    echo "$1: extracted in $3 s"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ -d "$DATA_ROOT" ] || fail "DATA_ROOT $DATA_ROOT is not a folder"
# Check every entry and checkpoint before extracting anything.
# MODELS is split at whitespace, so a path with a space splits its entry: every word's form is
# checked first, so such an entry is refused as a whole rather than as a missing checkpoint.
count=0
for entry in $MODELS; do
    count=$((count + 1))
    case $entry in
        *:*:*:*|:*) ;;
        *:*:*) continue ;;
    esac
    case $MODELS in
        *"$entry"[[:space:]]*|*[[:space:]]"$entry"*)
            fail "bad MODELS entry '$entry' (word $count of MODELS='$MODELS'): expected" \
                "name:config:checkpoint; entries are separated by whitespace, so names and paths" \
                "must not contain spaces" ;;
        *) fail "bad MODELS entry '$entry': expected name:config:checkpoint" ;;
    esac
done
count=0
for entry in $MODELS; do
    weights=${entry#*:*:}
    [ -f "$weights" ] || fail "${entry%%:*}: checkpoint $weights not found"
    count=$((count + 1))
done
[ "$count" -gt 0 ] || fail "MODELS is empty"

parent=$(dirname "$FEATURES_DIR")
mkdir -p "$parent"
STAGE=$(mktemp -d "$parent/.$(basename "$FEATURES_DIR").staging.XXXXXX") ||
    fail "cannot create a staging folder in $parent"
jobs_init "${JOBS:-1}"
extract_one() {  # name config weights defog-args
    echo "$1: global_model extract --checkpoint $3${2:+ --config $2}${4:+ $4}"
    # Paths hold no spaces (checked above), so the optional --config and the defog arguments can be
    # lists of words like EXTRACT_ARGS.
    # shellcheck disable=SC2086
    "$PYTHON" -m global_model extract ${2:+--config $2} --checkpoint "$3" --data-root "$DATA_ROOT" \
        --out-dir "$STAGE" --name "$1" --no-progress $4 $EXTRACT_ARGS || fail "$1: extraction failed"
}
names=
for entry in $MODELS; do
    name=${entry%%:*}
    rest=${entry#*:}
    config=${rest%%:*}
    weights=${rest#*:}
    defog=
    case $name in
        *@defog)
            [ -n "${DEFOG_WITH:-}" ] || fail "$name: a @defog model needs DEFOG_WITH (an SJDL checkpoint)"
            defog="--defog-with $DEFOG_WITH" ;;
    esac
    jobs_start "$name" "$STAGE/.$name.log" extract_one "$name" "$config" "$weights" "$defog"
    names="$names $name"
done
jobs_wait_all

# Every model succeeded: move the files into place, one model's files back to back.
mkdir -p "$FEATURES_DIR"
for name in $names; do
    for split in query gallery train val_query val_gallery; do
        for suffix in pkl npz; do
            file=${split}_$name.$suffix
            [ -f "$STAGE/$file" ] || continue
            mv -f "$STAGE/$file" "$FEATURES_DIR/$file" || fail "$name: cannot move $file into $FEATURES_DIR"
            echo "wrote $FEATURES_DIR/$file"
        done
    done
done
echo "extracted $count model(s) into $FEATURES_DIR"
