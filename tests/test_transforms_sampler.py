"""OpenCV transforms, the P×K sampler (incl. DDP sharding) and the dataset/collate/merge builders."""
from collections import Counter

import cv2
import numpy as np
import pytest
import torch

from global_model.config import load_config
from global_model.data.dataset import ReIDDataset, build_train_records, collate
from global_model.data.records import ImageRecord
from global_model.data.sampler import PKSampler, SamplerError
from global_model.data.transforms import TestTransform as EvalTransform
from global_model.data.transforms import (TrainTransform, TransformError, build_transforms, color_jitter,
                                          random_erasing)

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def gradient_image(h=40, w=60):
    """Asymmetric RGB image so flips and crops are visible."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256], -1).astype(np.uint8)


def denorm(x):
    return x.transpose(1, 2, 0) * STD + MEAN


# ----------------------------------------------------------------------------- transforms

def test_test_transform_resizes_and_normalises():
    img = np.full((50, 70, 3), (124, 116, 104), np.uint8)  # ≈ ImageNet mean colour
    out = EvalTransform((32, 48))(img)
    assert out.shape == (3, 32, 48) and out.dtype == np.float32
    assert np.abs(out).max() < 0.01
    white = EvalTransform((8, 8))(np.full((10, 10, 3), 255, np.uint8))
    np.testing.assert_allclose(white[:, 0, 0], (1 - MEAN) / STD, rtol=1e-5)


def test_train_transform_is_a_function_of_the_seed():
    t = TrainTransform((32, 48), padding=4, flip_prob=0.5, re_prob=0.5, cj_prob=0.5)
    img = gradient_image()
    a = t(img, np.random.default_rng(7))
    b = t(img, np.random.default_rng(7))
    assert a.shape == (3, 32, 48) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    outs = [t(img, np.random.default_rng(s)) for s in range(6)]
    assert len({o.tobytes() for o in outs}) == 6


def test_flip_mirrors_and_crop_comes_from_the_resized_image():
    img = gradient_image()
    plain = EvalTransform((40, 60))(img)
    flipped = TrainTransform((40, 60), padding=0, flip_prob=1.0, re_prob=0.0)(img, np.random.default_rng(0))
    np.testing.assert_allclose(flipped, plain[:, :, ::-1], atol=1e-6)
    # resize 44x64 then crop 40x60: every crop equals a window of the resized image
    t = TrainTransform((40, 60), resize=(44, 64), padding=0, flip_prob=0.0, re_prob=0.0)
    big = EvalTransform((44, 64))(img)
    out = t(img, np.random.default_rng(3))
    windows = [big[:, y:y + 40, x:x + 60] for y in range(5) for x in range(5)]
    assert any(np.allclose(out, w, atol=1e-6) for w in windows)
    with pytest.raises(TransformError, match="RESIZE_TRAIN"):
        TrainTransform((40, 60), resize=(30, 60))


def test_padding_adds_black_border_in_some_crops():
    t = TrainTransform((40, 60), padding=6, flip_prob=0.0, re_prob=0.0)
    img = np.full((40, 60, 3), 200, np.uint8)
    borders = [np.isclose(denorm(t(img, np.random.default_rng(s)))[0, 0], 0, atol=1e-5).all() for s in range(20)]
    assert any(borders) and not all(borders)


def test_random_erasing_blanks_one_rectangle():
    x = np.ones((3, 40, 60), np.float32)
    random_erasing(x, np.random.default_rng(0))
    zero = (x == 0).all(0)
    assert zero.any() and not zero.all()
    ys, xs = np.nonzero(zero)
    assert zero[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()  # a filled rectangle
    frac = zero.mean()
    assert 0.02 * 0.5 <= frac <= 0.4 * 1.5


def test_color_jitter_changes_colours_only():
    img = gradient_image()
    out = color_jitter(img, np.random.default_rng(1), 0.4, 0.4, 0.4, 0.1)
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    assert np.array_equal(color_jitter(img, np.random.default_rng(1)), img)  # all factors 0: identity


def test_build_transforms_follows_config():
    cfg = load_config(None, ["INPUT.SIZE_TRAIN", "[24, 40]", "INPUT.SIZE_TEST", "[16, 32]"])
    assert build_transforms(cfg, True)(gradient_image(), np.random.default_rng(0)).shape == (3, 24, 40)
    assert build_transforms(cfg, False)(gradient_image()).shape == (3, 16, 32)


def test_gray_input_gives_every_channel_the_luminance_in_training_and_testing():
    img = gradient_image()
    luma = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255
    cfg = load_config(None, ["INPUT.SIZE_TRAIN", "[40, 60]", "INPUT.SIZE_TEST", "[40, 60]", "INPUT.GRAY", "True",
                             "INPUT.PADDING", "0", "INPUT.FLIP_PROB", "0", "INPUT.RE_PROB", "0"])
    for out in (build_transforms(cfg, False)(img), build_transforms(cfg, True)(img, np.random.default_rng(0))):
        rgb = denorm(out)
        for c in range(3):
            np.testing.assert_allclose(rgb[..., c], luma, atol=1e-5)
    # Off by default: the colour image passes through.
    colour = denorm(build_transforms(load_config(None, ["INPUT.SIZE_TEST", "[40, 60]"]), False)(img))
    assert np.abs(colour[..., 0] - colour[..., 1]).max() > 0.3

# ----------------------------------------------------------------------------- sampler

def pids_for(counts):
    return [pid for pid, n in enumerate(counts) for _ in range(n)]


def batches_of(sampler, batch_size):
    items = list(sampler)
    assert len(items) == len(sampler) and len(items) % batch_size == 0
    return [items[i:i + batch_size] for i in range(0, len(items), batch_size)]


def test_pk_batches_hold_p_ids_with_k_images_each():
    pids = pids_for([9, 4, 2, 6, 5, 8, 3, 4])  # id 2 and 6 have fewer than K=4 images
    s = PKSampler(pids, batch_size=8, num_instances=4, seed=1)
    batches = batches_of(s, 8)
    assert batches
    for batch in batches:
        ids = Counter(pids[i] for i, _ in batch)
        assert len(ids) == 2 and set(ids.values()) == {4}
        seeds = [sd for _, sd in batch]
        assert len(set(seeds)) == len(seeds)
    # every image-group appears once per pass: no index repeats except by padding small ids
    used = Counter(i for b in batches for i, _ in b)
    assert all(n == 1 for i, n in used.items() if pids[i] not in (2, 6))


def test_pk_order_depends_on_seed_and_epoch_only():
    pids = pids_for([6] * 10)
    a, b = PKSampler(pids, 8, 4, seed=3), PKSampler(pids, 8, 4, seed=3)
    assert list(a) == list(b)
    a.set_epoch(1)
    e1 = list(a)
    assert e1 != list(b)
    b.load_state_dict(a.state_dict())
    assert list(b) == e1
    assert list(PKSampler(pids, 8, 4, seed=4)) != list(PKSampler(pids, 8, 4, seed=3))


def test_pk_ddp_ranks_split_each_global_batch_by_identity():
    pids = pids_for([4, 5, 8, 4, 6, 4, 7, 4, 4, 5, 4, 6])
    ranks = [PKSampler(pids, 8, 4, seed=0, rank=r, world_size=2) for r in range(2)]
    per_rank = [batches_of(s, 8) for s in ranks]
    assert len(per_rank[0]) == len(per_rank[1]) > 0
    for b0, b1 in zip(*per_rank):
        ids0, ids1 = {pids[i] for i, _ in b0}, {pids[i] for i, _ in b1}
        assert len(ids0) == len(ids1) == 2 and not ids0 & ids1


def test_pk_iters_per_epoch():
    s = PKSampler(pids_for([4] * 6), 8, 4, iters_per_epoch=7)
    assert len(batches_of(s, 8)) == 7  # more than one pass (3 batches) worth


@pytest.mark.parametrize("batch, world_size, message", [
    (10, 1, r"SOLVER.IMS_PER_BATCH \(10\) must be a multiple of DATALOADER.NUM_INSTANCE \(4\)"),
    (16, 2, r"at least 8 identities.*has 6"),
])
def test_pk_batch_shape_errors(batch, world_size, message):
    with pytest.raises(SamplerError, match=message):
        PKSampler(pids_for([4] * 6), batch, 4, world_size=world_size)


# ----------------------------------------------------------------------------- dataset

def test_dataset_pairs_share_augmentation_and_collate(tmp_path):
    img = gradient_image(48, 64)
    foggy, clear = str(tmp_path / "f.png"), str(tmp_path / "c.png")
    cv2.imwrite(foggy, img[:, :, ::-1])
    cv2.imwrite(clear, img[:, :, ::-1])
    recs = [ImageRecord(foggy, 0, 1, clear_path=clear), ImageRecord(foggy, 1, 2)]
    ds = ReIDDataset(recs, TrainTransform((32, 48), padding=4, re_prob=1.0, cj_prob=1.0))
    item = ds[(0, 12345)]
    assert torch.equal(item["images"], item["clear"])  # identical pixels + same seed → identical tensors
    assert not torch.equal(ds[(0, 1)]["images"], item["images"])
    batch = collate([item, ds[(1, 5)]])
    assert batch["images"].shape == (2, 3, 32, 48) and batch["pids"].tolist() == [0, 1]
    assert batch["camids"].dtype == torch.int64 and batch["paths"] == [foggy, foggy]
    assert batch["has_clear"].tolist() == [True, False] and batch["clear"].shape == batch["images"].shape
    assert "clear" not in collate([ds[(1, 5)]])


def write_aic(root, pids, cams):
    """A minimal AIC20 tree with the given train labels (and one query/gallery image)."""
    import os

    for d in ("image_train", "image_query", "image_test"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(pids))]
    img = gradient_image(16, 16)
    items = []
    for n, p, c in zip(names, pids, cams):
        cv2.imwrite(os.path.join(root, "image_train", n), img)
        items.append(f'<Item imageName="{n}" vehicleID="{p:04d}" cameraID="c{c:03d}"/>')
    for d in ("image_query", "image_test"):
        cv2.imwrite(os.path.join(root, d, "000001.jpg"), img)
    with open(os.path.join(root, "train_label.xml"), "w") as f:
        f.write('<?xml version="1.0" encoding="gb2312"?>\n<TrainingImages><Items number="%d">%s</Items>'
                "</TrainingImages>\n" % (len(items), "".join(items)))
    for fname, lines in (("name_train.txt", names), ("name_query.txt", ["000001.jpg"]),
                         ("name_test.txt", ["000001.jpg"])):
        with open(os.path.join(root, fname), "w") as f:
            f.write("\n".join(lines) + "\n")


def test_merged_train_sets_get_disjoint_ids_and_cameras(tmp_path):
    write_aic(str(tmp_path / "a"), [5, 5, 9, 9], [1, 2, 1, 2])
    write_aic(str(tmp_path / "b"), [5, 7, 7], [1, 1, 3])
    cfg = load_config(None, ["DATASETS.ROOT", str(tmp_path / "a"), "DATASETS.TRAIN", f"['aic20', 'aic20={tmp_path / 'b'}']"])
    recs, n = build_train_records(cfg)
    assert n == 4 and len(recs) == 7
    assert [r.pid for r in recs] == [0, 0, 1, 1, 2, 3, 3]  # b's id 5 is not a's id 5
    assert [r.camid for r in recs] == [0, 1, 0, 1, 2, 2, 3]
