# Sourced by demo.sh and extract_feature_val.sh, so both name the same models.
# The models `make demo` trains, as name:config pairs.
DEMO_MODEL_LIST="r18:global_model/configs/tiny_cpu.yml seres18:global_model/configs/tiny_cpu_seresnet.yml \
mgn_r18:mgn_model/configs/mgn_tiny.yml sjdl_r18:global_model/configs/sjdl_tiny.yml"

# model_module NAME: the package that trains and extracts a model: mgn_model for names starting
# with "mgn", global_model for the others (global backbones and SJDL).
model_module() {
    case $1 in
        mgn*) echo mgn_model ;;
        *) echo global_model ;;
    esac
}
