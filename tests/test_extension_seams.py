"""Extending from a test file alone: a loss term and a whole model family, used through the public commands."""
import os
import shutil

import pytest
import torch
from torch import nn
from yacs.config import CfgNode as CN

from global_model.cli import main
from global_model.config import CONFIG_EXTENSIONS, add_config
from global_model.engine.checkpoint import load_checkpoint
from global_model.engine.solver import OptimizerSpec
from global_model.engine.trainer import TRAINERS, Trainer, register_trainer
from global_model.modeling import ARCHS, register_arch
from global_model.modeling.baseline import Baseline
from global_model.modeling.losses import LOSS_TERMS, LossTerm, register_loss_term
from post_processing.features import load_features

CRITIC_LR = 0.02  # the family config's value (the family's default is 0.01)


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


def test_a_registered_loss_term_trains_and_is_reported(norm_term, tiny_data, tiny_config, tiny_overrides, short_run,
                                                       tmp_path):
    out = str(tmp_path / "run")
    opts = tiny_overrides(tiny_data, out, *short_run, "LOSS.UNIT_NORM_WEIGHT", "0.001")
    assert main(["train", "--config", tiny_config, "--no-progress", *opts]) == 0
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
def family_yaml(tmp_path_factory, tiny_config):
    path = tmp_path_factory.mktemp("family") / "unit_family.yml"
    path.write_text(f"_BASE_: {tiny_config}\nMODEL:\n  META_ARCH: unit_family\n  UNIT_FAMILY:\n    CRITIC_LR: {CRITIC_LR}\n")
    yield str(path)
    for registry in (ARCHS, TRAINERS, CONFIG_EXTENSIONS):
        registry.unregister("unit_family")


@pytest.fixture(scope="module")
def family_run(family_yaml, tiny_data, tiny_overrides, short_run, tmp_path_factory):
    """One short run of the family through the ``train`` command: its ``--no-progress`` + overrides, output, last.pth."""
    out = str(tmp_path_factory.mktemp("family_run") / "run")
    args = ["--no-progress", *tiny_overrides(tiny_data, out, *short_run)]
    assert main(["train", "--config", family_yaml, *args]) == 0
    return {"args": args, "out": out, "last": load_checkpoint(os.path.join(out, "last.pth"))}


def test_a_family_checkpoints_its_aux_module_and_optimizers(family_run):
    last = family_run["last"]
    assert set(last["aux"]) == {"critic"} and set(last["optimizers"]) == {"terms.center.centers", "critic"}


def test_a_family_aux_optimizer_steps_at_the_configured_lr(family_run):
    critic = family_run["last"]["optimizers"]["critic"]
    assert critic["state"], "the critic's own optimizer stepped"
    assert critic["param_groups"][0]["lr"] == CRITIC_LR


def test_a_family_aux_loss_is_logged(family_run):
    assert "critic" in open(os.path.join(family_run["out"], "log.txt")).read()


def test_a_family_resumes_and_trains_its_aux_module_on(family_yaml, family_run, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(family_run["out"], out)  # the shared run stays as it was
    epochs = family_run["last"]["epoch"] + 1
    args = [*family_run["args"], "OUTPUT_DIR", out, "SOLVER.MAX_EPOCHS", str(epochs)]
    assert main(["train", "--config", family_yaml, "--resume", "auto", *args]) == 0
    resumed = load_checkpoint(os.path.join(out, "last.pth"))
    assert resumed["epoch"] == epochs
    assert not torch.equal(resumed["aux"]["critic"]["weight"], family_run["last"]["aux"]["critic"]["weight"])


def test_a_family_checkpoint_extracts_features(family_run, tmp_path):
    feats = str(tmp_path / "feats")
    assert main(["extract", "--no-progress", "--checkpoint", os.path.join(family_run["out"], "model_final.pth"),
                 "--out-dir", feats, "--name", "fam"]) == 0
    assert load_features(os.path.join(feats, "query_fam.pkl")).feats.shape[0] > 0
