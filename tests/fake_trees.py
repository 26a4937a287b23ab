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
