"""``train`` ends with a run summary: the best validation epoch and mAP, and the checkpoint paths by role."""
import os
import re

import torch

from global_model.cli import main
from global_model.commands.train import summary_lines


def test_train_ends_with_the_best_epoch_its_map_and_the_checkpoints(tiny_data, tiny_config, tiny_overrides, tmp_path,
                                                                    capsys):
    out = str(tmp_path / "run")
    opts = tiny_overrides(tiny_data, out, "SOLVER.MAX_EPOCHS", "1", "SOLVER.ITERS_PER_EPOCH", "2")
    assert main(["train", "--config", tiny_config, "--no-progress", *opts]) == 0
    stdout = capsys.readouterr().out
    best = torch.load(os.path.join(out, "best.pth"), map_location="cpu", weights_only=True)
    match = re.search(r"best validation: epoch (\d+), mAP ([\d.]+)%", stdout)
    assert match, stdout[-2000:]
    assert int(match.group(1)) == best["epoch"] == best["best_epoch"]
    assert abs(float(match.group(2)) - 100 * best["best_map"]) < 0.006
    for role, name in (("final", "model_final.pth"), ("best", "best.pth"), ("last", "last.pth")):
        assert re.search(rf"^.*  {role} +{re.escape(os.path.join(out, name))}  \(", stdout, re.M), role
    assert "best validation: epoch" in open(os.path.join(out, "log.txt")).read()


def test_summary_says_why_there_is_no_best_epoch():
    none = {"best_epoch": None, "best_map": None, "checkpoints": {"final": "o/model_final.pth"}}
    assert summary_lines(none, 0)[1] == "  best validation: none (SOLVER.EVAL_PERIOD 0)"
    assert "no query/gallery ground truth" in summary_lines(none, 1)[1]
    assert summary_lines(none, 0)[2] == "  final o/model_final.pth  (weights + config, for extract/export)"
    older = {"best_epoch": None, "best_map": 0.5, "checkpoints": {}}
    assert summary_lines(older, 1)[1] == "  best validation: epoch ? (resumed from an older checkpoint), mAP 50.00%"
