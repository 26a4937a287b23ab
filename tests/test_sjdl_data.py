"""SJDL data: a foggy image and its clear twin get the same augmentation; the real-fog stream rides along."""
import os

import cv2
import numpy as np
import torch

from global_model.config import get_cfg
from global_model.data.dataset import ReIDDataset, build_train_loader, collate
from global_model.data.records import ImageRecord
from global_model.data.transforms import build_transforms
from global_model.engine.streams import Stream, StreamLoader
from global_model.sjdl.model import to_unit_range
from global_model.sjdl.trainer import join_real_batch


def write_png(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def aug_cfg(re_prob):
    cfg = get_cfg()
    cfg.INPUT.SIZE_TRAIN, cfg.INPUT.RESIZE_TRAIN, cfg.INPUT.PADDING = [32, 48], [40, 60], 0
    cfg.INPUT.FLIP_PROB, cfg.INPUT.RE_PROB, cfg.INPUT.CJ_PROB = 0.5, re_prob, 0.0
    return cfg


def pair_dataset(tmp_path, cfg):
    rng = np.random.default_rng(0)
    clear = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    clear_path = write_png(str(tmp_path / "clear" / "a.png"), clear)
    foggy_path = write_png(str(tmp_path / "foggy" / "a.png"), 255 - clear)  # a pixelwise, position-free relation
    rec = ImageRecord(foggy_path, 0, 0, clear_path=clear_path)
    return ReIDDataset([rec], build_transforms(cfg, is_train=True))


def test_paired_augmentation_keeps_pixels_aligned(tmp_path):
    cfg = aug_cfg(re_prob=0.0)
    ds = pair_dataset(tmp_path, cfg)
    mean, std = cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD
    seen = []
    for seed in range(12):
        item = ds[(0, seed)]
        foggy, clear = (to_unit_range(item[k][None], mean, std)[0] for k in ("images", "clear"))
        # crop and flip moved both the same way: the inversion relation holds at every pixel
        assert torch.allclose(foggy + clear, torch.ones_like(foggy), atol=2.5 / 255), seed
        seen.append(clear)
    assert len({tuple(c.flatten()[:64].tolist()) for c in seen}) > 3, "augmentation should vary with the seed"


def test_random_erasing_hits_the_same_rectangle_in_both(tmp_path):
    ds = pair_dataset(tmp_path, aug_cfg(re_prob=1.0))
    for seed in range(6):
        item = ds[(0, seed)]
        erased = [(item[k] == 0).all(0) for k in ("images", "clear")]
        assert erased[0].any() and torch.equal(erased[0], erased[1]), seed
    batch = collate([ds[(0, 1)], ds[(0, 2)]])
    assert batch["clear"].shape == batch["images"].shape and batch["has_clear"].tolist() == [True, True]


def test_stream_loader_adds_a_real_batch_every_period_and_replays_an_epoch(tmp_path):
    cfg = get_cfg()
    cfg.INPUT.SIZE_TRAIN, cfg.INPUT.PADDING = [8, 8], 0
    cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCE, cfg.DATALOADER.NUM_WORKERS = 4, 2, 0
    img = np.full((8, 8, 3), 90, np.uint8)
    main = [ImageRecord(write_png(str(tmp_path / f"m{p}_{k}.png"), img), p, 0) for p in range(6) for k in range(2)]
    real = [ImageRecord(write_png(str(tmp_path / f"r{p}_{k}.png"), img), 6 + p, 0) for p in range(2) for k in range(2)]
    main_loader, main_sampler = build_train_loader(cfg, main)
    real_loader, real_sampler = build_train_loader(cfg, real)
    main_loader.generator, real_loader.generator = torch.Generator(), torch.Generator()
    streams = {"real": Stream(real, period=2, num_ids=2, join=join_real_batch)}
    mixed = StreamLoader(main_loader, main_sampler, streams, {"real": (real_loader, real_sampler)}, seed=0)
    main_sampler.set_epoch(3)
    batches = list(mixed)
    assert len(batches) == len(main_loader) == 3
    for i, b in enumerate(batches):
        assert len(b["pids"]) == 4 and int(b["pids"].max()) < 6
        if i % 2 == 0:
            assert b["images"].shape[0] == 8 and sorted(set(b["real_pids"].tolist())) == [6, 7]
        else:
            assert b["images"].shape[0] == 4 and "real_pids" not in b
    assert real_sampler.epoch == 3  # the real stream follows the main epoch (exact resume)
    again = list(mixed)
    assert [b["paths"] for b in again] == [b["paths"] for b in batches]
    assert [b.get("real_paths") for b in again] == [b.get("real_paths") for b in batches]
