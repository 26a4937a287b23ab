"""yacs defaults shared by every model family: device, backbone, losses, input, data, solver, test.

A family adds its own keys with ``global_model.config.add_config`` (``MODEL.MGN`` in
``mgn_model/config.py``, ``MODEL.SJDL`` in ``global_model/sjdl/config.py``); ``get_cfg(meta_arch)``
returns these defaults plus the keys of the family ``MODEL.META_ARCH`` names. Each key documents
itself; YAML files override them and the command line overrides those with ``KEY VALUE`` pairs.
"""
from yacs.config import CfgNode as CN

_C = CN()

# ----------------------------------------------------------------------------- model
_C.MODEL = CN()
_C.MODEL.META_ARCH = "baseline"  # architecture registry name: baseline, or a family (mgn, sjdl, ...)
_C.MODEL.DEVICE = "auto"  # auto | cpu | cuda | cuda:N
_C.MODEL.BACKBONE = "resnet50"  # any name the backbone factory knows (timm / pretrainedmodels / torchvision)
_C.MODEL.PRETRAINED = False  # load ImageNet weights (library cache or PRETRAIN_PATH); never silently random
_C.MODEL.PRETRAIN_PATH = ""  # local ImageNet weight file, used instead of the library's download/cache
# A ReID checkpoint to start training from (fine-tuning): every tensor whose name and shape match is
# loaded, the rest (e.g. a classifier for another number of ids) keeps its fresh init. Not --resume.
_C.MODEL.WEIGHTS = ""
_C.MODEL.LAST_STRIDE = 1  # 1 keeps a 2x larger last feature map on ResNet-like nets
_C.MODEL.POOLING = "avg"  # avg | max | gem
_C.MODEL.GEM_P = 3.0
_C.MODEL.REDUCTION_DIM = 0  # >0: 1x1 conv to this width after pooling (AIC20-5th uses 2048)
_C.MODEL.NECK = "bnneck"  # bnneck | none
_C.MODEL.TEST_FEAT = "after_bn"  # before_bn | after_bn: which vector extraction returns
_C.MODEL.CHANNELS_LAST = True

# ----------------------------------------------------------------------------- losses
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.LABEL_SMOOTH = 0.1
_C.LOSS.TRIPLET_WEIGHT = 1.0
_C.LOSS.TRIPLET_MARGIN = 0.3  # 0 selects the soft-margin triplet
_C.LOSS.CENTER_WEIGHT = 0.0  # e.g. 0.0005
_C.LOSS.CENTER_LR = 0.5
_C.LOSS.CIRCLE_WEIGHT = 0.0
_C.LOSS.CIRCLE_MARGIN = 0.25
_C.LOSS.CIRCLE_GAMMA = 128.0

# ----------------------------------------------------------------------------- input
_C.INPUT = CN()
_C.INPUT.SIZE_TRAIN = [256, 256]  # H, W after augmentation
_C.INPUT.SIZE_TEST = [256, 256]  # H, W
_C.INPUT.RESIZE_TRAIN = [0, 0]  # H, W to resize to before random crop (0: SIZE_TRAIN + padding)
_C.INPUT.PADDING = 10
_C.INPUT.FLIP_PROB = 0.5
_C.INPUT.RE_PROB = 0.5  # random erasing
_C.INPUT.CJ_PROB = 0.0  # colour jitter probability
_C.INPUT.CJ_BRIGHTNESS = 0.2
_C.INPUT.CJ_CONTRAST = 0.15
_C.INPUT.CJ_SATURATION = 0.1
_C.INPUT.CJ_HUE = 0.0
_C.INPUT.GRAY = False  # luminance only, in all three channels (a colour-blind ensemble member)
_C.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]
_C.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]
# Low-resolution training (global_model/data/lowres.py): with probability LR_PROB a training image is
# shrunk by one of LR_SCALES (drawn per image) and enlarged back, before any other augmentation.
_C.INPUT.LR_SCALES = [2.0, 4.0]
_C.INPUT.LR_PROB = 0.0

# ----------------------------------------------------------------------------- data
_C.DATASETS = CN()
_C.DATASETS.ROOT = "data"  # default root for entries below given without '=path'
# Train sets, merged with disjoint ids: "name" (at ROOT) or "name=path" (a relative path is inside ROOT),
# e.g. ["aic20", "aic20_sim=/d/sim"]; loader options go in brackets: "fvrid(split=both)=fvrid".
_C.DATASETS.TRAIN = ["aic20"]
_C.DATASETS.TEST = "aic20"  # query/gallery split used for validation and extraction ("name" or "name=path")
_C.DATASETS.SKIP_BAD = False  # skip (and report) unreadable images instead of failing
# Hold identities of every entry above out of training as a validation split (the loader option
# val_ids of each entry, unless it names its own): N ids, or a fraction of them; 0 holds none out.
_C.DATASETS.VAL_IDS = 0.0
_C.DATASETS.VAL_SEED = 0  # which ids (the same seed picks the same vehicles in every loader numbering them alike)

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 2
_C.DATALOADER.NUM_INSTANCE = 4  # K of the PxK sampler

# ----------------------------------------------------------------------------- solver
_C.SOLVER = CN()
_C.SOLVER.OPTIMIZER = "SGD"  # SGD | Adam | AdamW | AMSGrad
_C.SOLVER.BASE_LR = 0.01
_C.SOLVER.BIAS_LR_FACTOR = 1.0
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = False  # SGD only
_C.SOLVER.WEIGHT_DECAY = 5e-4
_C.SOLVER.WEIGHT_DECAY_BIAS = 5e-4
_C.SOLVER.WEIGHT_DECAY_NORM = 5e-4  # weights of BN/GN/LN layers (0 = no decay)
_C.SOLVER.BACKBONE_LR_FACTOR = 1.0  # LR multiplier for backbone parameters (AIC20-5th: 0.1)
_C.SOLVER.IMS_PER_BATCH = 64  # P*K per process
_C.SOLVER.MAX_EPOCHS = 12
_C.SOLVER.SCHED = "multistep"  # multistep | cosine
_C.SOLVER.STEPS = [40, 70]  # epochs, for multistep
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.ETA_MIN_LR = 0.0  # final LR of the cosine schedule
_C.SOLVER.WARMUP_EPOCHS = 0
_C.SOLVER.WARMUP_FACTOR = 0.01
_C.SOLVER.AMP = "auto"  # auto | off | fp16 | bf16 (auto: bf16 on CPU with AMX/AVX512-BF16, fp16 on CUDA)
_C.SOLVER.CHECKPOINT_PERIOD = 1  # epochs
_C.SOLVER.EVAL_PERIOD = 1  # epochs; 0 disables validation
_C.SOLVER.LOG_PERIOD = 20  # iterations
_C.SOLVER.SEED = 0
_C.SOLVER.ITERS_PER_EPOCH = 0  # 0: one pass over the sampler

# ----------------------------------------------------------------------------- test / extraction
_C.TEST = CN()
_C.TEST.IMS_PER_BATCH = 128
_C.TEST.FLIP = True  # flip TTA: average original and flipped features, then L2-normalise
_C.TEST.NORM = True
_C.TEST.AMP = "auto"  # auto | off | bf16 | fp16
_C.TEST.LR_SCALE = 1.0  # > 1: evaluate/extract on images degraded by this scale (as make-lr --scale)
_C.TEST.LR_APPLY = "query"  # query | gallery | both: which split TEST.LR_SCALE degrades

_C.OUTPUT_DIR = "outputs/model"


def get_core_cfg():
    """A fresh copy of the shared defaults (``global_model.config.get_cfg`` adds a family's keys)."""
    return _C.clone()
