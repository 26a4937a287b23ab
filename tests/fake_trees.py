"""Tiny dataset trees with the real naming schemes and quirks, built by tests under ``tmp_path``
(through the ``fake_trees`` fixture of ``conftest.py``).

Each ``build_*`` writes 8×8 JPEGs plus the format's lists/labels and returns the dataset root.
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, List, Sequence

import cv2
import numpy as np


def write_jpeg(path: str, value: int = 128) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, np.full((8, 8, 3), value % 256, np.uint8)), path
    return path


def write_text(path: str, text: str, encoding: str = "utf-8") -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text.encode(encoding))
    return path


def label_xml(items: Iterable[Dict[str, str]]) -> bytes:
    """AIC/VeRi label XML as shipped: gb2312-declared, with a Chinese comment and attribute value."""
    lines = ['<?xml version="1.0" encoding="gb2312"?>', "<!-- 车辆重识别 训练标注 -->",
             '<TrainingImages Version="1.0" 说明="车辆">', '<Items number="0">']
    for item in items:
        lines.append("<Item " + " ".join(f'{k}="{v}"' for k, v in item.items()) + " />")
    lines += ["</Items>", "</TrainingImages>", ""]
    return "\r\n".join(lines).encode("gb2312")


def write_label_xml(path: str, items: Iterable[Dict[str, str]]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(label_xml(items))
    return path


def _images(folder: str, names: Sequence[str]) -> None:
    for i, name in enumerate(names):
        write_jpeg(os.path.join(folder, name), 20 * i)


# ----------------------------------------------------------------------------- AIC20

AIC_TRAIN = [  # (name, vehicleID, cameraID)
    ("000001.jpg", "0001", "c001"), ("000002.jpg", "0001", "c002"),
    ("000003.jpg", "0347", "c026"), ("000004.jpg", "0347", "c026"),
    ("000005.jpg", "0005", "c010"), ("000006.jpg", "0005", "c010"),
]
AIC_QUERY = ["000003.jpg", "000001.jpg", "000002.jpg"]  # deliberately not sorted
AIC_TEST = ["000001.jpg", "000002.jpg", "000003.jpg", "000004.jpg", "000005.jpg"]
AIC_QUERY_GT = {"000003.jpg": ("0010", "c003"), "000001.jpg": ("0011", "c004"), "000002.jpg": ("0010", "c005")}
AIC_TEST_GT = {"000001.jpg": ("0010", "c003"), "000002.jpg": ("0011", "c003"), "000003.jpg": ("0010", "c003"),
               "000004.jpg": ("0011", "c003"), "000005.jpg": ("0012", "c004")}


def build_aic20(root: str, ground_truth: bool = False) -> str:
    _images(os.path.join(root, "image_train"), [n for n, _, _ in AIC_TRAIN])
    _images(os.path.join(root, "image_query"), AIC_QUERY)
    _images(os.path.join(root, "image_test"), AIC_TEST)
    write_text(os.path.join(root, "name_train.txt"), "\n".join(n for n, _, _ in AIC_TRAIN) + "\n")
    write_text(os.path.join(root, "name_query.txt"), "\r\n".join(AIC_QUERY) + "\r\n")
    write_text(os.path.join(root, "name_test.txt"), "\n".join(AIC_TEST) + "\n\n")
    write_label_xml(os.path.join(root, "train_label.xml"),
                    [{"imageName": n, "vehicleID": v, "cameraID": c} for n, v, c in AIC_TRAIN])
    # Real track files end every line with a space; a blank line must not count as a track.
    write_text(os.path.join(root, "train_track.txt"), "000001.jpg 000002.jpg \n000003.jpg 000004.jpg \n")
    write_text(os.path.join(root, "test_track.txt"), "000002.jpg 000004.jpg \r\n\r\n000001.jpg 000003.jpg \r\n")
    write_text(os.path.join(root, "test_track_id.txt"), "2 4 \n1 3 \n")
    if ground_truth:
        for file, gt in (("query_label.xml", AIC_QUERY_GT), ("test_label.xml", AIC_TEST_GT)):
            write_label_xml(os.path.join(root, file),
                            [{"imageName": n, "vehicleID": v, "cameraID": c} for n, (v, c) in gt.items()])
    return root


def build_aic20_sim(root: str) -> str:
    """VehicleX layout: image_train/ + train_label.xml with extra attributes, no name list."""
    items = [{"imageName": "000001.jpg", "vehicleID": "0001", "cameraID": "c001", "colorID": "3",
              "typeID": "2", "orientation": "12.5"},
             {"imageName": "000002.jpg", "vehicleID": "0002", "cameraID": "c002", "colorID": "1",
              "typeID": "4", "orientation": "270.0"}]
    _images(os.path.join(root, "image_train"), [i["imageName"] for i in items])
    write_label_xml(os.path.join(root, "train_label.xml"), items)
    return root


# ----------------------------------------------------------------------------- VeRi-776

VERI_TRAIN = ["0002_c003_00084180_0.jpg", "0001_c001_00016450_0.jpg", "0001_c002_00016500_1.jpg"]
VERI_QUERY = ["0002_c002_00030600_0.jpg"]
VERI_TEST = ["0002_c002_00030600_0.jpg", "0002_c003_00030700_0.jpg", "0005_c001_00001000_0.jpg"]


def build_veri776(root: str) -> str:
    _images(os.path.join(root, "image_train"), VERI_TRAIN)
    _images(os.path.join(root, "image_query"), VERI_QUERY)
    _images(os.path.join(root, "image_test"), VERI_TEST)
    write_text(os.path.join(root, "image_test", "Thumbs.db"), "not an image")
    write_text(os.path.join(root, "name_train.txt"), "\n".join(VERI_TRAIN) + "\n")  # not sorted
    write_text(os.path.join(root, "name_query.txt"), "\n".join(VERI_QUERY) + "\n")
    # no name_test.txt: the loader falls back to the sorted folder listing
    write_label_xml(os.path.join(root, "train_label.xml"), [
        {"imageName": n, "vehicleID": n[:4], "cameraID": n[5:9], "colorID": "1", "typeID": "4"}
        for n in VERI_TRAIN])
    write_label_xml(os.path.join(root, "test_label.xml"), [
        {"imageName": n, "vehicleID": n[:4], "cameraID": n[5:9], "colorID": "2", "typeID": "1"}
        for n in VERI_TEST])
    return root


# ----------------------------------------------------------------------------- VehicleID

VID_TRAIN = [("0000001", 1), ("0000002", 1), ("0000003", 2)]
VID_TEST = [(f"{100 + i:07d}", 10 + i // 4) for i in range(12)]  # ids 10, 11, 12 with 4 images each


def build_vehicleid(root: str) -> str:
    _images(os.path.join(root, "image"), [n + ".jpg" for n, _ in VID_TRAIN + VID_TEST])
    split = os.path.join(root, "train_test_split")
    # Real lists carry no extension; CRLF and blank lines must be tolerated; one line has ".jpg".
    lines = [f"{n} {v}" for n, v in VID_TRAIN[:2]] + ["", f"{VID_TRAIN[2][0]}.jpg {VID_TRAIN[2][1]}", ""]
    write_text(os.path.join(split, "train_list.txt"), "\r\n".join(lines))
    write_text(os.path.join(split, "test_list_800.txt"), "\n".join(f"{n} {v}" for n, v in VID_TEST) + "\n")
    return root


# ----------------------------------------------------------------------------- VeRi-Wild

WILD_TRAIN = ["00001/000001", "00001/000002", "00002/000003"]
WILD_TEST = ["00003/000004", "00003/000005", "00004/000006", "00004/000007"]
WILD_QUERY = ["00003/000004", "00004/000006"]
WILD_CAMERAS = {"00001/000001": 1, "00001/000002": 2, "00002/000003": 17, "00003/000004": 5,
                "00003/000005": 6, "00004/000006": 7, "00004/000007": 7}


def build_veriwild(root: str) -> str:
    _images(os.path.join(root, "images"), [k + ".jpg" for k in WILD_CAMERAS])
    split = os.path.join(root, "train_test_split")
    write_text(os.path.join(split, "train_list.txt"), "\n".join(WILD_TRAIN) + "\n")
    write_text(os.path.join(split, "test_3000.txt"), "\n".join(WILD_TEST) + "\n")
    write_text(os.path.join(split, "test_3000_query.txt"), "\n".join(WILD_QUERY) + "\n")
    info = ["id/image;Camera ID;Time;Model;Type;Color"]
    info += [f"{k};{c:03d};2018-03-11 17:56:{i:02d};Chevrolet#Epica;sedan;gray"
             for i, (k, c) in enumerate(WILD_CAMERAS.items())]
    write_text(os.path.join(split, "vehicle_info.txt"), "\n".join(info) + "\n")
    return root


# ----------------------------------------------------------------------------- FVRID

FVRID_SYN = {"train": ["00000_c013_298403_0.jpg", "00000_c014_298500_0.jpg", "00003_c001_000100_0.jpg"],
             "query": ["00100_c002_000001_0.jpg"],
             "gallery": ["00100_c003_000002_0.jpg", "00101_c002_000003_0.jpg"]}
FVRID_REAL = {"train": ["00001_c001_000010_0.jpg", "00002_c002_000011_0.jpg", "-1_c002_000012_0.jpg"],
              "query": ["00200_c001_000020_0.jpg"],
              "gallery": ["00200_c002_000021_0.jpg", "-1_c003_000022_0.jpg"]}


def build_fvrid(root: str) -> str:
    for part, names in FVRID_SYN.items():
        _images(os.path.join(root, "FVRID_syn", f"{part}_foggy"), names)
        _images(os.path.join(root, "FVRID_syn", f"{part}_clear"), names)
    for part, names in FVRID_REAL.items():
        _images(os.path.join(root, "FVRID_real", f"{part}_foggy"), names)
    return root


# ----------------------------------------------------------------------------- Market-1501

MARKET = {"bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c3s1_000001_01.jpg",
                                 "-1_c1s1_000000_00.jpg", "0000_c1s1_000000_01.jpg"],
          "query": ["0002_c1s1_000551_01.jpg", "0007_c6s2_000101_01.jpg"],
          "bounding_box_test": ["0002_c2s1_000801_01.jpg", "0000_c6s1_000000_02.jpg", "-1_c1s2_000000_00.jpg",
                                "0007_c1s1_000002_01.jpg"]}


def build_market1501(root: str) -> str:
    for folder, names in MARKET.items():
        _images(os.path.join(root, folder), names)
        write_text(os.path.join(root, folder, "Thumbs.db"), "not an image")
    return root


def names(records) -> List[str]:
    return [r.name for r in records]


# ----------------------------------------------------------------------------- Market-layout person sets

DUKE = {"bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg", "0003_c1_f0044158.jpg"],
        "query": ["0005_c2_f0046985.jpg", "0008_c1_f0001000.jpg"],
        "bounding_box_test": ["0005_c5_f0051781.jpg", "0008_c1_f0001100.jpg", "0008_c3_f0002000.jpg",
                              "0019_c6_f0000100.jpg"]}
PRW = {"bounding_box_train": ["479_c1s1_000001.jpg", "479_c2s1_000101.jpg", "-2_c1s1_000002.jpg"],
       "query": ["501_c1s1_000011.jpg", "-2_c3s1_000003.jpg"],
       "bounding_box_test": ["501_c2s1_000021.jpg", "-2_c1s1_000022.jpg", "501_c1s1_000023.jpg"]}
CUHK03_NP = {"bounding_box_train": ["0001_c1_1.png", "0001_c2_2.png", "0002_c1_3.png"],
             "query": ["0010_c1_4.png", "0011_c2_5.png"],
             "bounding_box_test": ["0010_c2_6.png", "0011_c1_7.png", "0011_c2_8.png"]}


def build_market_layout(root: str, tree: Dict[str, List[str]]) -> str:
    for folder, files in tree.items():
        _images(os.path.join(root, folder), files)
    return root


def build_cuhk03_np(root: str) -> str:
    for variant in ("labeled", "detected"):
        build_market_layout(os.path.join(root, variant), CUHK03_NP)
    return root


# ----------------------------------------------------------------------------- MSMT17

MSMT = {"train": [("0000/0000_000_01_0303morning_0015_0.jpg", 0), ("0000/0000_001_05_0303morning_0016_0.jpg", 0),
                  ("0001/0001_000_12_0303noon_0001_1.jpg", 1)],
        "val": [("0002/0002_000_03_0303noon_0002_0.jpg", 2)],
        "query": [("0000/0000_000_01_0303afternoon_0001_0.jpg", 0)],
        "gallery": [("0000/0000_001_15_0303afternoon_0002_0.jpg", 0), ("0001/0001_000_01_0303night_0001_0.jpg", 1)]}


def build_msmt17(root: str, v2: bool = False) -> str:
    folders = ("mask_train_v2", "mask_test_v2") if v2 else ("train", "test")
    for part, entries in MSMT.items():
        base = os.path.join(root, folders[0] if part in ("train", "val") else folders[1])
        for i, (rel, _) in enumerate(entries):
            write_jpeg(os.path.join(base, rel), 30 * i)
        write_text(os.path.join(root, f"list_{part}.txt"), "".join(f"{rel} {pid}\n" for rel, pid in entries))
    return root


# ----------------------------------------------------------------------------- own data

def build_folder(root: str) -> str:
    """train/<id>/, query/<id>/, gallery/<id>/ plus one gallery image without identity; names c<N>_*."""
    layout = {"train": {"alice": ["c1_a.jpg", "c2_b.jpg"], "bob": ["c1_c.jpg"]},
              "query": {"007": ["c1_q1.jpg"], "042": ["c2_q2.jpg"]},
              "gallery": {"007": ["c2_g1.jpg", "c1_g2.jpg"], "042": ["c1_g3.jpg"]}}
    for split, ids in layout.items():
        for ident, files in ids.items():
            _images(os.path.join(root, split, ident), files)
    write_jpeg(os.path.join(root, "gallery", "c3_unknown.jpg"), 7)
    return root


CSV_ROWS = {"train": [("img/t1.jpg", 5, 1), ("img/t2.jpg", 5, 2), ("img/t3.jpg", 9, 1)],
            "query": [("img/q1.jpg", 5, 1, "1"), ("img/q2.jpg", 9, 2, "0")],
            "gallery": [("img/g1.jpg", 5, 2), ("img/g2.jpg", 9, 1), ("img/g3.jpg", 9, 1)]}


def build_csv(root: str, cameras: bool = True) -> str:
    """train/query/gallery.csv (query.csv with a header and a ``night`` column) over ``img/``."""
    for split, rows in CSV_ROWS.items():
        _images(root, [r[0] for r in rows])
        lines = ["path,pid,camid,trackid,night"] if split == "query" else []
        for row in rows:
            cam = str(row[2]) if cameras else ""
            extra = f",,{row[3]}" if split == "query" else ""
            lines.append(f"{row[0]},{row[1]},{cam}{extra}")
        write_text(os.path.join(root, f"{split}.csv"), "\n".join(lines) + "\n")
    return root


# ----------------------------------------------------------------------------- CUHK03 raw release

# persons per camera pair, and which of the 10 cells hold an image (columns 0-4 view 1, 5-9 view 2)
CUHK03_PAIRS = [[(0, 1, 5, 6), (0, 5), (2, 7, 8)], [(0, 5, 6), (1,)]]


def build_cuhk03(root: str, testsets: int = 20) -> str:
    """``cuhk03_release/cuhk-03.mat`` as MATLAB v7.3 writes it (HDF5, object references, column-major):
    ``labeled``/``detected`` 1×P refs to 10×N ref cells (empty cells are [0, 0] uint64), images 3×W×H
    uint8, ``testsets`` 1×T refs to 2×K (campair, pid) 1-based."""
    import h5py

    os.makedirs(os.path.join(root, "cuhk03_release"), exist_ok=True)
    with h5py.File(os.path.join(root, "cuhk03_release", "cuhk-03.mat"), "w") as mat:
        refs = h5py.ref_dtype
        for v, variant in enumerate(("labeled", "detected")):
            pair_refs = []
            for c, persons in enumerate(CUHK03_PAIRS):
                cells = np.empty((10, len(persons)), dtype=refs)
                for p, filled in enumerate(persons):
                    for col in range(10):
                        name = f"#refs#/{variant}_{c}_{p}_{col}"
                        if col in filled:
                            img = np.full((3, 6, 12), 10 * (col + 1) + v, np.uint8)  # H 12, W 6 after .T
                            img[0] = 40 * p
                            mat.create_dataset(name, data=img)
                        else:
                            mat.create_dataset(name, data=np.zeros(2, np.uint64))
                        cells[col, p] = mat[name].ref
                mat.create_dataset(f"#refs#/{variant}_pair{c}", data=cells)
                pair_refs.append(mat[f"#refs#/{variant}_pair{c}"].ref)
            mat.create_dataset(variant, data=np.array([pair_refs], dtype=refs))
        sets = []
        for t in range(testsets):
            # row 0 the camera pairs, row 1 the persons (MATLAB's column-major [K, 2] as HDF5 stores it)
            tests = np.array([[1, 2], [1 + t % 3, 2]]) if t % 2 else np.array([[1, 2], [1, 1]])
            mat.create_dataset(f"#refs#/test{t}", data=tests.astype(np.float64))
            sets.append(mat[f"#refs#/test{t}"].ref)
        mat.create_dataset("testsets", data=np.array([sets], dtype=refs))
    return root


def cuhk03_names() -> List[str]:
    """Image names the fake cuhk-03.mat extracts to (the same for both variants)."""
    out = []
    for c, persons in enumerate(CUHK03_PAIRS, 1):
        for p, filled in enumerate(persons, 1):
            out += [f"{c}_{p:03d}_{1 if col < 5 else 2}_{col + 1:02d}.png" for col in filled]
    return out


def build_cuhk03_protocol(root: str, variant: str = "labeled", train_idx=None, query_idx=None,
                          gallery_idx=None) -> str:
    """``cuhk03_new_protocol_config_<variant>.mat`` (MATLAB v5, scipy.io.savemat) over the fake images:
    persons 1, 2 of pair 1 train; the rest test (one query per view); indices 1-based."""
    import scipy.io

    names = cuhk03_names()
    labels = []
    offsets = np.cumsum([0] + [len(p) for p in CUHK03_PAIRS])
    for name in names:
        labels.append(offsets[int(name[0]) - 1] + int(name[2:5]))
    train = [i + 1 for i, n in enumerate(names) if labels[i] in (1, 2)]
    test = [i + 1 for i, n in enumerate(names) if labels[i] not in (1, 2)]
    query = [i for i in test if names[i - 1] in ("1_003_1_03.png", "2_001_2_06.png")]
    gallery = [i for i in test if i not in query]
    filelist = np.empty((len(names), 1), dtype=object)
    for i, n in enumerate(names):
        filelist[i, 0] = n
    path = os.path.join(root, f"cuhk03_new_protocol_config_{variant}.mat")
    scipy.io.savemat(path, {
        "filelist": filelist, "labels": np.asarray(labels, np.float64).reshape(-1, 1),
        "camId": np.asarray([int(n[6]) for n in names], np.float64).reshape(-1, 1),
        "train_idx": np.asarray(train_idx if train_idx is not None else train, np.float64).reshape(-1, 1),
        "query_idx": np.asarray(query_idx if query_idx is not None else query, np.float64).reshape(-1, 1),
        "gallery_idx": np.asarray(gallery_idx if gallery_idx is not None else gallery, np.float64).reshape(-1, 1)})
    return path


def build_person_set(root: str, layout: str, n_ids: int = 10, per_id: int = 4, seed: int = 0):
    """A person set with enough ids to rank: ``market1501``, ``cuhk03_np`` (under ``labeled/``) or ``csv``
    (without camera ids). One query per id, ``per_id`` gallery images per id over 4 cameras; Market gets
    distractors (0000) and junk (-1) too. Returns an ``ensemble_fakes.Tree`` of the evaluated images."""
    from ensemble_fakes import Tree

    rng = np.random.default_rng(seed)
    ext = ".png" if layout == "cuhk03_np" else ".jpg"
    q = [(pid, int(rng.integers(4))) for pid in range(1, n_ids + 1)]
    g = [(pid, int(rng.integers(4))) for pid in range(1, n_ids + 1) for _ in range(per_id)]
    if layout == "market1501":
        g += [(0, 1), (0, 2)]
    qn = [f"{p:04d}_c{c + 1}s1_{i:06d}_01{ext}" for i, (p, c) in enumerate(q)]
    gn = [f"{p:04d}_c{c + 1}s1_{100 + i:06d}_01{ext}" for i, (p, c) in enumerate(g)]
    if layout == "csv":
        qn = [f"q{i:03d}.jpg" for i in range(len(q))]
        gn = [f"g{i:03d}.jpg" for i in range(len(g))]
        _images(os.path.join(root, "img"), qn + gn)
        for split, names, rows in (("query", qn, q), ("gallery", gn, g)):
            write_text(os.path.join(root, f"{split}.csv"), "".join(f"img/{n},{p},\n" for n, (p, _) in zip(names, rows)))
    else:
        base = os.path.join(root, "labeled") if layout == "cuhk03_np" else root
        _images(os.path.join(base, "query"), qn)
        junk = ["-1_c1s1_000999_01.jpg"] if layout == "market1501" else []
        _images(os.path.join(base, "bounding_box_test"), gn + junk)
        _images(os.path.join(base, "bounding_box_train"), [f"0099_c1s1_000001_01{ext}"])
    order = lambda names: sorted(range(len(names)), key=lambda i: names[i])  # noqa: E731 (loaders sort by name)
    qo, go = order(qn), order(gn)
    return Tree(root, [qn[i] for i in qo], [gn[i] for i in go], [q[i][0] for i in qo], [g[i][0] for i in go],
                [q[i][1] for i in qo], [g[i][1] for i in go])
