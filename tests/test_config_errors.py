"""Bad config values reach the user as one ``error:`` line and exit 2, not as a traceback.

Each value is checked while the trainer is built (solver, AMP, device, model heads, MGN branches),
so every case stops before the first training step.
"""
import os

import pytest
import torch

from global_model.cli import main
from post_processing.distance import MetricError, pairwise_distance
from post_processing.errors import ReidUsageError

MGN_CONFIG = ("mgn_model", "configs", "mgn_tiny.yml")
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="the value is only refused without CUDA")


@pytest.mark.parametrize("config, key, value, message", [
    (None, "SOLVER.OPTIMIZER", "Adagrad", "SOLVER.OPTIMIZER 'Adagrad' is not one of SGD, Adam, AdamW"),
    (None, "SOLVER.SCHED", "linear", "SOLVER.SCHED 'linear' is not one of multistep, cosine"),
    (None, "SOLVER.AMP", "int8", "AMP mode 'int8' (SOLVER.AMP / TEST.AMP) is not one of auto, off, bf16, fp16"),
    pytest.param(None, "SOLVER.AMP", "fp16", "AMP fp16 (SOLVER.AMP / TEST.AMP) needs a CUDA device", marks=NO_CUDA),
    (None, "MODEL.DEVICE", "gpu0", "MODEL.DEVICE 'gpu0' is not a torch device; expected auto, cpu, cuda"),
    pytest.param(None, "MODEL.DEVICE", "cuda", "MODEL.DEVICE is 'cuda' but no CUDA device", marks=NO_CUDA),
    (None, "MODEL.POOLING", "mean", "MODEL.POOLING must be one of avg, max, gem, got 'mean'"),
    (None, "MODEL.NECK", "bn", "MODEL.NECK must be one of bnneck, none, got 'bn'"),
    (None, "MODEL.TEST_FEAT", "after", "MODEL.TEST_FEAT must be one of before_bn, after_bn, got 'after'"),
    (None, "MODEL.REDUCTION_DIM", "-1", "MODEL.REDUCTION_DIM must be 0 (off) or a width, got -1"),
    (MGN_CONFIG, "MODEL.MGN.BRANCHES", "['g', 'x2']", "MODEL.MGN.BRANCHES entry 'x2' is not 'g', 'hN' or 'vN'"),
    (MGN_CONFIG, "MODEL.MGN.BRANCHES", "['h2', 'h2']", "MODEL.MGN.BRANCHES must list distinct branches"),
    (MGN_CONFIG, "MODEL.MGN.TEST_VECTORS", "['h4.0']", "MODEL.MGN.TEST_VECTORS ['h4.0'] are not vectors"),
    (MGN_CONFIG, "MODEL.MGN.POOLING", "gem", "MODEL.MGN.POOLING must be one of max, avg, got 'gem'"),
    (MGN_CONFIG, "MODEL.MGN.REDUCTION_DIM", "0", "MODEL.MGN.REDUCTION_DIM must be a positive width, got 0"),
])
def test_bad_config_value_is_one_usage_error_line(config, key, value, message, repo_root, tiny_config, tiny_opts,
                                                  tiny_data, tmp_path, capsys):
    path = tiny_config if config is None else os.path.join(repo_root, *config)
    code = main(["train", "--config", path, "--no-progress", *tiny_opts, "DATASETS.ROOT", tiny_data,
                 "OUTPUT_DIR", str(tmp_path), key, value])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and key in errors[0]
    assert not (tmp_path / "last.pth").exists()


@pytest.mark.parametrize("metric", ["manhattan", "Cosine"])
def test_unknown_metric_is_a_usage_error_and_still_a_value_error(metric):
    with pytest.raises(MetricError, match=f"unknown metric '{metric}'; expected one of euclidean") as info:
        pairwise_distance([[1.0, 0.0]], [[0.0, 1.0]], metric)
    assert isinstance(info.value, ReidUsageError) and isinstance(info.value, ValueError)
