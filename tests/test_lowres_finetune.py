"""MODEL.WEIGHTS (fine-tuning from a ReID checkpoint) and the octuplet fine-tuning family."""
import logging

import pytest
import torch

from global_model.config import load_config
from global_model.engine.checkpoint import CheckpointError, load_checkpoint, load_matching_weights
from global_model.engine.trainer import build_trainer
from global_model.modeling import build_model


@pytest.fixture(scope="module")
def five_id_checkpoint(tmp_path_factory, tiny_config):
    """A tiny baseline model with a 5-identity classifier, saved as a bare state dict."""
    cfg = load_config(tiny_config)
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("weights") / "five_ids.pth"
    torch.save(build_model(cfg, 5).state_dict(), path)
    return str(path)


def test_model_weights_loads_matching_tensors_and_keeps_a_new_classifier(five_id_checkpoint, tiny_config, caplog):
    torch.manual_seed(4)
    model = build_model(load_config(tiny_config), 7)
    fresh = model.classifier.weight.detach().clone()
    with caplog.at_level(logging.INFO, logger="global_model.train"):
        loaded, skipped = load_matching_weights(model, five_id_checkpoint)
    stored = torch.load(five_id_checkpoint)
    assert skipped == ["classifier.weight"] and len(loaded) == len(stored) - 1
    assert torch.equal(model.backbone.body.conv1.weight, stored["backbone.body.conv1.weight"])
    assert torch.equal(model.classifier.weight, fresh)
    assert "kept the new classifier.weight (shape (5, 512) in the checkpoint, (7, 512) in the model)" in caplog.text
    with pytest.raises(CheckpointError, match="none of its 1 tensors matches"):
        torch.save({"other.weight": torch.zeros(2)}, five_id_checkpoint + ".bad")
        load_matching_weights(model, five_id_checkpoint + ".bad")


def _finetune_cfg(tiny_config, root, out, weights, epochs):
    return load_config("global_model/lowres/configs/octuplet_tiny.yml", [
        "MODEL.WEIGHTS", weights, "DATASETS.ROOT", root, "OUTPUT_DIR", out, "SOLVER.MAX_EPOCHS", str(epochs),
        "SOLVER.ITERS_PER_EPOCH", "2", "SOLVER.IMS_PER_BATCH", "16", "SOLVER.EVAL_PERIOD", "0", "SOLVER.STEPS", "[1]",
        "DATALOADER.NUM_WORKERS", "0", "LOSS.TRIPLET_WEIGHT", "0.5", "MODEL.LOWRES.SCALES", "[2.0, 4.0]"])


def test_octuplet_finetuning_starts_from_weights_steps_its_schedule_and_resumes_exactly(
        tiny_data, five_id_checkpoint, tiny_config, tmp_path, repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    straight = build_trainer(_finetune_cfg(tiny_config, tiny_data, str(tmp_path / "a"), five_id_checkpoint, 2),
                             progress=False)
    metrics = straight.train()
    assert {"octuplet", "oct_HH", "oct_HL", "oct_LH", "oct_LL", "triplet"} <= set(metrics) and "ce" not in metrics
    assert straight.scheduler.get_lr() == pytest.approx(0.0005)  # halved after epoch 1 (SOLVER.STEPS [1])
    final = load_checkpoint(str(tmp_path / "a" / "model_final.pth"))
    assert final["meta_arch"] == "lowres" and final["finetuned_from"] == five_id_checkpoint
    assert final["lowres_scales"] == [2.0, 4.0]

    build_trainer(_finetune_cfg(tiny_config, tiny_data, str(tmp_path / "b"), five_id_checkpoint, 1),
                  progress=False).train()
    resumed = build_trainer(_finetune_cfg(tiny_config, tiny_data, str(tmp_path / "b"), five_id_checkpoint, 2),
                            resume=str(tmp_path / "b" / "last.pth"), progress=False)
    resumed.train()
    again = load_checkpoint(str(tmp_path / "b" / "model_final.pth"))["model"]
    for name, tensor in final["model"].items():
        assert torch.equal(tensor, again[name]), name

    with pytest.raises(Exception, match="would overwrite MODEL.WEIGHTS"):
        build_trainer(_finetune_cfg(tiny_config, tiny_data, str(tmp_path / "a"),
                                    str(tmp_path / "a" / "model_final.pth"), 1), progress=False)
