"""A small AIC20-layout tree with ground truth and fake per-model features, for the `ensemble` tests
(through the ``ensemble_fakes`` fixture of ``conftest.py``).

Features are id prototypes plus independent noise per model, so fusing the models averages the
noise out and beats each model alone.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List

import cv2
import numpy as np
from fake_trees import write_label_xml, write_text

from post_processing.features import save_features


@dataclass
class Tree:
    root: str
    query: List[str]
    gallery: List[str]
    q_pids: List[int]
    g_pids: List[int]
    q_cams: List[int]
    g_cams: List[int]
    train: List[str] = field(default_factory=list)
    t_pids: List[int] = field(default_factory=list)


def build_tree(root: str, n_ids: int = 24, per_id: int = 5, n_cams: int = 4, ground_truth: bool = True,
               images: bool = False, train_ids: int = 0, seed: int = 0, foggy_every: int = 0) -> Tree:
    """AIC layout under ``root``: one query per id, ``per_id`` gallery images per id over cameras, tracks of
    same-id same-camera runs (test_track.txt lines end with a space), gb2312-declared label XMLs;
    ``train_ids`` further ids with ``per_id`` labelled training images each; ``foggy_every`` > 0 marks
    every n-th query ``foggy="1"`` (the others ``"0"``), as the synthetic benchmark does."""
    rng = np.random.default_rng(seed)
    gallery = [(pid, int(rng.integers(n_cams))) for pid in range(n_ids) for _ in range(per_id)]
    gallery = [gallery[i] for i in rng.permutation(len(gallery))]
    g_names = [f"{i + 1:06d}.jpg" for i in range(len(gallery))]
    q_pids = list(range(n_ids))
    q_cams = [int(rng.integers(n_cams)) for _ in q_pids]
    q_names = [f"{i + 1:06d}.jpg" for i in range(n_ids)]
    order = rng.permutation(n_ids)  # query list not in id order
    q_names = [q_names[i] for i in order]
    q_pids = [q_pids[i] for i in order]
    q_cams = [q_cams[i] for i in order]

    write_text(os.path.join(root, "name_query.txt"), "\n".join(q_names) + "\n")
    write_text(os.path.join(root, "name_test.txt"), "\n".join(g_names) + "\n")
    tracks: Dict[tuple, List[str]] = {}
    for name, key in zip(g_names, gallery):
        tracks.setdefault(key, []).append(name)
    lines = [" ".join(members) + " \n" for members in tracks.values() if len(members) > 1]
    write_text(os.path.join(root, "test_track.txt"), "".join(lines))
    if ground_truth:
        fog = [{"foggy": str(int(i % foggy_every == 0))} if foggy_every else {} for i in range(n_ids)]
        write_label_xml(os.path.join(root, "query_label.xml"),
                        [{"imageName": n, "vehicleID": f"{p:04d}", "cameraID": f"c{c + 1:03d}", **f}
                         for n, p, c, f in zip(q_names, q_pids, q_cams, fog)])
        write_label_xml(os.path.join(root, "test_label.xml"),
                        [{"imageName": n, "vehicleID": f"{p:04d}", "cameraID": f"c{c + 1:03d}"}
                         for n, (p, c) in zip(g_names, gallery)])
    if images:  # distinct 16x16 noise images, tinted by identity
        for folder, names, pids in (("image_query", q_names, q_pids), ("image_test", g_names, [p for p, _ in gallery])):
            os.makedirs(os.path.join(root, folder), exist_ok=True)
            for n, p in zip(names, pids):
                img = rng.integers(0, 96, size=(16, 16, 3)) + (37 * p) % 160
                assert cv2.imwrite(os.path.join(root, folder, n), img.astype(np.uint8))
    t_pids = [pid for pid in range(n_ids, n_ids + train_ids) for _ in range(per_id)]
    t_names = [f"{i + 1:06d}.jpg" for i in range(len(t_pids))]
    if train_ids:
        write_text(os.path.join(root, "name_train.txt"), "\n".join(t_names) + "\n")
        write_label_xml(os.path.join(root, "train_label.xml"),
                        [{"imageName": n, "vehicleID": f"{p:04d}", "cameraID": f"c{i % n_cams + 1:03d}"}
                         for i, (n, p) in enumerate(zip(t_names, t_pids))])
    return Tree(root, q_names, g_names, q_pids, [p for p, _ in gallery], q_cams, [c for _, c in gallery],
                t_names, t_pids)


def write_features(features_dir: str, tree: Tree, noise: Dict[str, float], dim: int = 16, seed: int = 0,
                   suffix: str = ".pkl", shuffle: bool = True) -> None:
    """``query_<m>`` / ``gallery_<m>`` files: prototype of the id + N(0, noise[m]) per model.

    Rows are written in a shuffled order so that alignment by name, not position, is exercised.
    """
    rng, shuffler = np.random.default_rng(seed), np.random.default_rng(seed + 1)
    n_ids = max(tree.q_pids + tree.g_pids + tree.t_pids) + 1
    splits = [("query", tree.query, tree.q_pids), ("gallery", tree.gallery, tree.g_pids)]
    if tree.train:
        splits.append(("train", tree.train, tree.t_pids))
    for m, sigma in noise.items():
        protos = rng.normal(size=(n_ids, dim)).astype(np.float32)
        for split, names, pids in splits:
            feats = protos[pids] + sigma * rng.normal(size=(len(pids), dim)).astype(np.float32)
            order = shuffler.permutation(len(names)) if shuffle else np.arange(len(names))
            save_features(os.path.join(features_dir, f"{split}_{m}{suffix}"),
                          [names[i] for i in order], feats[order])

