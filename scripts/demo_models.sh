# Sourced by demo.sh and extract_feature_val.sh, so both name the same models.
# The models `make demo` trains, as name:config pairs; each config's MODEL.META_ARCH picks the family.
# All train on the FVRID view (foggy images + real-fog vehicles): on the validation split that
# fusion scored 41.4 mAP against 37.8 for the same models trained on the AIC view (docs/experiments.md).
# r18_gray sees luminance only: weaker alone, but the fusion gains from it on validation
# (+3.25 over the best single model with it, +1.64 without; docs/experiments.md).
DEMO_MODEL_LIST="r18:global_model/configs/tiny_fvrid.yml mgn_r18:mgn_model/configs/mgn_tiny_fvrid.yml \
sjdl_r18:global_model/sjdl/configs/sjdl_tiny.yml r18_gray:global_model/configs/tiny_fvrid_gray.yml"
# Models that also contribute features of SJDL-defogged images (<name>@defog), and the SJDL model
# (one of the list above) whose checkpoint restores the images.
DEMO_DEFOG_LIST="r18"
DEMO_DEFOGGER_NAME="sjdl_r18"
