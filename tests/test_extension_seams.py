"""Extending from a test file alone: a loss term and a whole model family, used through the public commands."""
import os

import pytest
import torch
from torch import nn
from yacs.config import CfgNode as CN

from engine_helpers import TINY_CONFIG, TINY_OPTS, tiny_data
from global_model.cli import main
from global_model.config import CONFIG_EXTENSIONS, add_config
from global_model.engine.checkpoint import load_checkpoint
from global_model.engine.solver import OptimizerSpec
from global_model.engine.trainer import TRAINERS, Trainer, register_trainer
from global_model.modeling import ARCHS, register_arch
from global_model.modeling.baseline import Baseline
from global_model.modeling.losses import LOSS_TERMS, LossTerm, register_loss_term
from post_processing.features import load_features

RUN = ["SOLVER.MAX_EPOCHS", "1", "SOLVER.ITERS_PER_EPOCH", "2", "SOLVER.EVAL_PERIOD", "0"]


# ----------------------------------------------------------------------------- a loss term
class FeatureNormTerm(LossTerm):
    """Mean squared feature norm: a regulariser reading the triplet features."""

    weight_key, output_key, order = "LOSS.UNIT_NORM_WEIGHT", "triplet_feats", 900

    @classmethod
    def from_config(cls, cfg, num_classes, feat_dim):
        return cls()

    def forward(self, feats, pids):
        return feats.pow(2).sum(1).mean()


def add_norm_weight(cfg):
    cfg.LOSS.UNIT_NORM_WEIGHT = 0.0


@pytest.fixture
def norm_term():
    register_loss_term("unit_norm")(FeatureNormTerm)
    add_config("unit_norm", shared=True)(add_norm_weight)  # every family's configs get the weight key
    yield
    LOSS_TERMS.unregister("unit_norm")
    CONFIG_EXTENSIONS.unregister("unit_norm")


def test_a_registered_loss_term_trains_and_is_reported(norm_term, tmp_path_factory, tmp_path):
    root = tiny_data(tmp_path_factory)
    out = str(tmp_path / "run")
    args = ["train", "--config", TINY_CONFIG, "--no-progress", *TINY_OPTS, "DATASETS.ROOT", root, "OUTPUT_DIR", out,
            *RUN, "LOSS.UNIT_NORM_WEIGHT", "0.001"]
    assert main(args) == 0
    log = open(os.path.join(out, "log.txt")).read()
    assert "unit_norm" in log and "center" in log


# ----------------------------------------------------------------------------- a model family
@register_arch("unit_family")
class UnitFamilyNet(Baseline):
    """The baseline that also hands its layer1 map to an auxiliary critic while training."""

    def forward(self, images):
        if not self.training:
            return super().forward(images)
        final, maps = self.backbone.forward_intermediates(images, ("layer1",))
        return {**self.head(final), "layer1": maps["layer1"]}


@register_trainer("unit_family")
class UnitFamilyTrainer(Trainer):
    """A critic on layer1 as an auxiliary module with its own Adam, stepped on its own loss."""

    def build_aux_modules(self, model):
        width = model.backbone.body.layer1[-1].conv2.out_channels
        return {"critic": nn.Conv2d(width, 1, 1)}

    def build_extra_optimizers(self, aux, loss_fn):
        lr = self.cfg.MODEL.UNIT_FAMILY.CRITIC_LR
        return {**super().build_extra_optimizers(aux, loss_fn),
                "critic": OptimizerSpec(torch.optim.Adam(aux["critic"].parameters(), lr=lr), joint=False)}

    def run_step(self, batch):
        batch = self.to_device(batch)
        outputs, loss, parts = self.forward_and_loss(batch)
        self.backward_and_step(loss, self.joint_optimizers())
        critic = self.aux["critic"](outputs["layer1"].detach()).pow(2).mean()
        self.backward_and_step(critic, ["critic"])
        self.scaler.update()
        return {"loss": float(loss.detach()), **parts, "critic": float(critic.detach())}


@add_config("unit_family")
def add_unit_family_config(cfg):
    cfg.MODEL.UNIT_FAMILY = CN()
    cfg.MODEL.UNIT_FAMILY.CRITIC_LR = 0.01


@pytest.fixture(scope="module")
def family_yaml(tmp_path_factory):
    path = tmp_path_factory.mktemp("family") / "unit_family.yml"
    path.write_text(f"_BASE_: {TINY_CONFIG}\nMODEL:\n  META_ARCH: unit_family\n  UNIT_FAMILY:\n    CRITIC_LR: 0.02\n")
    yield str(path)
    for registry in (ARCHS, TRAINERS, CONFIG_EXTENSIONS):
        registry.unregister("unit_family")


def test_a_registered_family_trains_resumes_and_extracts(family_yaml, tmp_path_factory, tmp_path):
    root = tiny_data(tmp_path_factory)
    out = str(tmp_path / "run")
    args = ["--no-progress", *TINY_OPTS, "DATASETS.ROOT", root, "OUTPUT_DIR", out, *RUN]
    assert main(["train", "--config", family_yaml, *args]) == 0
    last = load_checkpoint(os.path.join(out, "last.pth"))
    assert set(last["aux"]) == {"critic"} and set(last["optimizers"]) == {"terms.center.centers", "critic"}
    assert last["optimizers"]["critic"]["state"], "the critic's own optimizer stepped"
    assert last["optimizers"]["critic"]["param_groups"][0]["lr"] == 0.02
    critic = {k: v.clone() for k, v in last["aux"]["critic"].items()}
    assert "critic" in open(os.path.join(out, "log.txt")).read()
    assert main(["train", "--config", family_yaml, "--resume", "auto", *args, "SOLVER.MAX_EPOCHS", "2"]) == 0
    resumed = load_checkpoint(os.path.join(out, "last.pth"))
    assert resumed["epoch"] == 2 and not torch.equal(resumed["aux"]["critic"]["weight"], critic["weight"])
    feats = str(tmp_path / "feats")
    assert main(["extract", "--no-progress", "--weights", os.path.join(out, "model_final.pth"), "--out-dir", feats,
                 "--name", "fam"]) == 0
    assert load_features(os.path.join(feats, "query_fam.pkl")).feats.shape[0] > 0
