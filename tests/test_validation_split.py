"""The validation split (val_ids/val_seed): disjoint from train and test, deterministic per seed,
AIC-like query/gallery, excluded from training, and read by the ensemble as split=val."""
import os

import numpy as np
import pytest

from global_model.data.datasets import DatasetError, load_dataset
from global_model.data.datasets.validation import choose_val_ids, split_view


@pytest.fixture(scope="module")
def tree(tmp_path_factory, ensemble_fakes):
    return ensemble_fakes.build_tree(str(tmp_path_factory.mktemp("val_tree")), n_ids=10, per_id=4, n_cams=4,
                                     train_ids=20)


def _load(root, **options):
    return load_dataset("aic20", root, require_images=False, **options)


def test_val_split_is_disjoint_from_train_and_test(tree):
    ds = _load(tree.root, val_ids=6, val_seed=3)
    val = split_view(ds, "val")
    held = set(val.extra["val_ids"])
    assert len(held) == 6
    train_pids = {r.pid for r in ds.train}
    assert train_pids.isdisjoint(held) and train_pids | held == set(tree.t_pids)
    val_pids = {r.pid for r in val.query} | {r.pid for r in val.gallery}
    assert val_pids <= held
    assert val_pids.isdisjoint({r.pid for r in ds.query} | {r.pid for r in ds.gallery})
    names = [r.name for r in val.query] + [r.name for r in val.gallery]
    assert len(set(names)) == len(names) and set(names).isdisjoint(r.name for r in ds.train)


def test_val_queries_have_a_match_in_another_sighting(tree):
    val = split_view(_load(tree.root, val_ids=6, val_seed=3), "val")
    assert val.query and val.extra["has_ground_truth"]
    for q in val.query:
        matches = [g for g in val.gallery if g.pid == q.pid]
        assert matches and all(g.camid != q.camid for g in matches)  # no tracks here: sightings are cameras
    tracks = val.extra["tracks"]
    assert [r.trackid for r in val.gallery] == [t for t, names in enumerate(tracks) for _ in names]


def test_val_split_is_deterministic_for_a_seed(tree):
    def split(seed):
        val = split_view(_load(tree.root, val_ids=0.25, val_seed=seed), "val")
        return [r.name for r in val.query], [r.name for r in val.gallery], val.extra["val_ids"]

    assert split(1) == split(1)
    assert len(split(1)[2]) == 5  # a fraction of the 20 training ids
    assert split(1)[2] != split(2)[2]


def test_held_out_ids_depend_only_on_the_seed_and_the_ids():
    # Two loaders listing the same vehicles in another order (AIC train, FVRID_syn) hold out the same ones.
    forward = choose_val_ids(list(range(1, 301)), 60, 0)
    assert forward == choose_val_ids([p for p in range(300, 0, -1) for _ in range(3)], 60, 0)
    assert len(forward) == 60 and forward != choose_val_ids(list(range(1, 301)), 60, 1)
    assert choose_val_ids(list(range(1, 301)), 0.2, 0) == forward


@pytest.mark.parametrize("bad", [0, 20, 1.5, -0.2, "x", True])
def test_bad_val_ids_are_refused(tree, bad):
    with pytest.raises(DatasetError, match="val_ids"):
        _load(tree.root, val_ids=bad)


def test_test_split_without_val_ids_has_no_validation(tree):
    with pytest.raises(DatasetError, match="no validation split"):
        split_view(_load(tree.root), "val")


def test_training_excludes_the_held_out_ids(tiny_data, tiny_cfg, tmp_path):
    from global_model.data.dataset import build_test_split, build_train_records

    cfg = tiny_cfg(tiny_data, str(tmp_path), "DATASETS.TRAIN", '["aic20(val_ids=6, val_seed=1)"]',
                   "DATASETS.TEST", "aic20(val_ids=6, val_seed=1)")
    records, num_classes = build_train_records(cfg)
    full = load_dataset("aic20", tiny_data)
    held = set(load_dataset("aic20", tiny_data, val_ids=6, val_seed=1).extra["validation"].extra["val_ids"])
    assert num_classes == len({r.pid for r in full.train}) - 6
    assert {os.path.basename(r.path) for r in records}.isdisjoint(
        {r.name for r in full.train if r.pid in held})
    splits, _ = build_test_split(cfg, split="val")
    assert {r.pid for r in splits["query"]} <= held and all("image_train" in r.path for r in splits["gallery"])
    test, _ = build_test_split(cfg)
    assert [r.name for r in test["query"]] == [r.name for r in full.query]


def test_ensemble_inputs_read_val_files_only(tree, ensemble_fakes, tmp_path):
    from ensembles.inputs import load_inputs, load_split_lists
    from post_processing.features import save_features

    val = load_split_lists(tree.root, split="val", val_ids=6, val_seed=3)
    rng = np.random.default_rng(0)
    for side, recs in (("val_query", val.query), ("val_gallery", val.gallery)):
        save_features(str(tmp_path / f"{side}_m.pkl"), [r.name for r in recs],
                      rng.normal(size=(len(recs), 8)).astype(np.float32))
    inputs = load_inputs(str(tmp_path), tree.root, ["m"], split="val", val_ids=6, val_seed=3)
    assert inputs.labels.has_gt and len(inputs.labels.q_pids) == len(val.query)
    with pytest.raises(DatasetError, match="--val-ids"):
        load_split_lists(tree.root, split="val")
