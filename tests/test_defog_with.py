"""`extract --defog-with`: another model's features of the images an SJDL checkpoint restored."""
import os

import cv2
import numpy as np
import pytest
import torch

from global_model.config import load_config_string
from global_model.data.records import ImageRecord
from global_model.engine.checkpoint import save_checkpoint
from global_model.engine.extractor import extract_features, model_fingerprint
from global_model.modeling import build_model
from global_model.sjdl.model import build_defog_decoder
from global_model.engine.restore import ImageRestorer

CFG = """
MODEL: {{META_ARCH: {arch}, BACKBONE: resnet10t, PRETRAINED: False, LAST_STRIDE: 2{extra}}}
INPUT: {{SIZE_TRAIN: [32, 32], SIZE_TEST: [32, 32]}}
DATASETS: {{ROOT: '{root}', TEST: aic20}}
DATALOADER: {{NUM_WORKERS: 0}}
TEST: {{IMS_PER_BATCH: 4, AMP: 'off', FLIP: False}}
"""


def _checkpoint(path, root, arch, extra=""):
    torch.manual_seed(0)
    cfg = load_config_string(CFG.format(arch=arch, root=root, extra=extra))
    model = build_model(cfg, 5).eval()
    state = {"model": model.state_dict(), "cfg": cfg.dump(), "num_classes": 5}
    if arch == "sjdl":
        state["aux"] = {"decoder": build_defog_decoder(cfg, model).state_dict()}
    save_checkpoint(path, state)
    return cfg, model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("defog_with"))
    rng = np.random.default_rng(0)
    records = []
    for i in range(6):
        path = os.path.join(root, f"{i:06d}.png")
        assert cv2.imwrite(path, rng.integers(0, 255, size=(40, 30, 3)).astype(np.uint8))
        records.append(ImageRecord(path, i % 3, i % 2))
    sjdl = os.path.join(root, "sjdl.pth")
    _checkpoint(sjdl, root, "sjdl", ", SJDL: {WIDTH: 8, DC_PATCH: 3}")
    cfg, model = _checkpoint(os.path.join(root, "r.pth"), root, "baseline")
    return {"root": root, "records": records, "sjdl": sjdl, "cfg": cfg, "model": model}


def test_restored_images_keep_each_source_size(setup):
    restored = ImageRestorer(setup["sjdl"]).restore(setup["records"], progress=False)
    assert [img.shape for img in restored] == [(40, 30, 3)] * len(setup["records"])
    assert restored[0].dtype == np.uint8


def test_features_are_those_of_the_restored_images(setup, tmp_path):
    restored = ImageRestorer(setup["sjdl"]).restore(setup["records"], progress=False)
    names, feats = extract_features(setup["model"], setup["records"], setup["cfg"], progress=False, images=restored)
    # The same images written losslessly and extracted from the files give the same features.
    written = []
    for rec, img in zip(setup["records"], restored):
        path = str(tmp_path / rec.name)
        assert cv2.imwrite(path, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        written.append(ImageRecord(path, rec.pid, rec.camid))
    _, from_files = extract_features(setup["model"], written, setup["cfg"], progress=False)
    _, plain = extract_features(setup["model"], setup["records"], setup["cfg"], progress=False)
    assert names == [r.name for r in setup["records"]]
    np.testing.assert_allclose(feats, from_files, atol=1e-5)
    assert not np.allclose(feats, plain, atol=1e-3)


def test_the_defogger_is_part_of_the_fingerprint(setup):
    weights = os.path.join(setup["root"], "r.pth")
    plain = model_fingerprint(weights, setup["cfg"])
    defogged = model_fingerprint(weights, setup["cfg"], defog_with=setup["sjdl"])
    assert defogged["fingerprint"] != plain["fingerprint"] and defogged["defog_with"] == setup["sjdl"]


def test_extract_cli_writes_val_and_test_features_of_restored_images(setup, ensemble_fakes, tmp_path):
    from ensembles.inputs import load_split_lists
    from global_model.cli import main as cli
    from post_processing.features import load_features

    root = str(tmp_path / "tree")
    tree = ensemble_fakes.build_tree(root, n_ids=6, per_id=3, n_cams=3, images=True, train_ids=8)
    os.makedirs(os.path.join(root, "image_train"))
    rng = np.random.default_rng(1)
    for name in tree.train:
        assert cv2.imwrite(os.path.join(root, "image_train", name), rng.integers(0, 255, (20, 16, 3)).astype(np.uint8))
    cfg = load_config_string(CFG.format(arch="baseline", root=root, extra=""))
    cfg.defrost()
    cfg.DATASETS.VAL_IDS = 3.0
    weights = str(tmp_path / "r.pth")
    save_checkpoint(weights, {"model": setup["model"].state_dict(), "cfg": cfg.dump(), "num_classes": 5})
    out = tmp_path / "feats"
    assert cli(["extract", "--checkpoint", weights, "--out-dir", str(out), "--name", "r@defog", "--split", "val",
                "--split", "both", "--defog-with", setup["sjdl"], "--no-progress"]) == 0
    val = load_split_lists(root, split="val", val_ids=3)
    query = load_features(str(out / "val_query_r@defog.pkl"))
    assert sorted(query.names) == sorted(r.name for r in val.query)
    assert query.meta["defog_with"] == setup["sjdl"]
    assert sorted(load_features(str(out / "gallery_r@defog.pkl")).names) == sorted(tree.gallery)
    records = [r for r in val.query]
    records = [type(r)(os.path.join(root, "image_train", r.name), r.pid, r.camid) for r in records]
    restored = ImageRestorer(setup["sjdl"]).restore(records, progress=False)
    names, feats = extract_features(setup["model"], records, cfg, progress=False, images=restored)
    order = [query.names.index(n) for n in names]
    np.testing.assert_allclose(query.feats[order], feats, atol=2e-3)


def test_extract_script_names_the_missing_defogger(repo_root, setup, tmp_path):
    import subprocess

    env = {**os.environ, "MODELS": f"r@defog::{setup['sjdl']}", "DATA_ROOT": setup["root"],
           "FEATURES_DIR": str(tmp_path / "feats")}
    env.pop("DEFOG_WITH", None)
    res = subprocess.run(["sh", os.path.join(repo_root, "scripts", "extract_feature_val.sh")], env=env,
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert "r@defog: a @defog model needs DEFOG_WITH (an SJDL checkpoint)" in res.stderr
    assert not (tmp_path / "feats").exists()
