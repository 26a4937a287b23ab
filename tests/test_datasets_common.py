"""Shared parsers: gb2312-declared label XML, name lists and track files with their quirks; registry."""
import codecs
import os

import pytest

from global_model.data.datasets import DATASETS, DatasetError, load_dataset
from global_model.data.datasets.common import parse_label_xml, parse_track_file, read_labels, read_name_list
from post_processing.errors import ReidError, ReidUsageError

ITEMS = [{"imageName": "021284.jpg", "vehicleID": "0347", "cameraID": "c026", "colorID": "3"},
         {"imageName": "000002.jpg", "vehicleID": "0001", "cameraID": "c001", "orientation": "12.5"}]


def _write(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def test_label_xml_declared_gb2312_with_chinese_text(tmp_path, fake_trees):
    data = fake_trees.label_xml(ITEMS)
    assert b'encoding="gb2312"' in data and "车辆".encode("gb2312") in data
    assert parse_label_xml(_write(tmp_path / "l.xml", data)) == ITEMS


@pytest.mark.parametrize("variant", ["bom_utf8", "no_declaration", "utf8_content_gb2312_declared", "gbk_only_char"])
def test_label_xml_variants(tmp_path, variant, fake_trees):
    text = fake_trees.label_xml(ITEMS).decode("gb2312")
    if variant == "bom_utf8":
        data = codecs.BOM_UTF8 + text.replace('encoding="gb2312"', 'encoding="utf-8"').encode("utf-8")
    elif variant == "no_declaration":
        data = text.split("?>", 1)[1].replace("\r\n", "\n").encode("gb2312")
    elif variant == "utf8_content_gb2312_declared":
        data = text.encode("utf-8")
    else:  # "镕" is in GBK but not in GB2312: a strict gb2312 decoder would fail
        data = text.replace("车辆", "镕").encode("gbk")
    assert parse_label_xml(_write(tmp_path / "l.xml", data)) == ITEMS


def test_read_labels_converts_ids_and_keeps_other_attributes(tmp_path, fake_trees):
    labels = read_labels("aic20", _write(tmp_path / "l.xml", fake_trees.label_xml(ITEMS)))
    assert list(labels) == ["021284.jpg", "000002.jpg"]
    assert labels["021284.jpg"] == (347, 26, {"colorID": 3})
    assert labels["000002.jpg"] == (1, 1, {"orientation": 12.5})


@pytest.mark.parametrize("items, message", [
    ([{"imageName": "a.jpg", "vehicleID": "1"}], "lacks cameraID"),
    ([{"imageName": "a.jpg", "vehicleID": "x1", "cameraID": "c001"}], "a.jpg"),
    ([{"imageName": "a.jpg", "vehicleID": "1", "cameraID": "cam1"}], "camera id like 'c026'"),
    ([{"imageName": "a.jpg", "vehicleID": "1", "cameraID": "c1"}] * 2, "a.jpg is labelled twice"),
    ([], "has no <Item> elements"),
])
def test_read_labels_bad_items(tmp_path, items, message, fake_trees):
    path = _write(tmp_path / "l.xml", fake_trees.label_xml(items))
    with pytest.raises(DatasetError, match="aic20 loader") as err:
        read_labels("aic20", path)
    assert message in str(err.value) and path in str(err.value)


def test_malformed_xml_names_the_file(tmp_path, fake_trees):
    path = _write(tmp_path / "broken.xml", fake_trees.label_xml(ITEMS)[:-40])
    with pytest.raises(DatasetError, match="broken.xml: malformed XML"):
        parse_label_xml(path)


def test_name_list_and_track_quirks(tmp_path, fake_trees):
    names = fake_trees.write_text(str(tmp_path / "n.txt"), "\ufeff000002.jpg\r\n\r\n000001.jpg \r\n")
    assert read_name_list(names) == ["000002.jpg", "000001.jpg"]
    tracks = fake_trees.write_text(str(tmp_path / "t.txt"), "000002.jpg 000004.jpg \n\n  \n000001.jpg \n")
    assert parse_track_file(tracks) == [["000002.jpg", "000004.jpg"], ["000001.jpg"]]


def test_bad_name_list_line_names_file_and_line(tmp_path, fake_trees):
    path = fake_trees.write_text(str(tmp_path / "n.txt"), "a.jpg\nb.jpg c.jpg\n")
    with pytest.raises(DatasetError, match="n.txt:2: expected one image name per line"):
        read_name_list(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DatasetError, match="missing file .*nope.txt"):
        read_name_list(os.path.join(tmp_path, "nope.txt"))


def test_every_loader_module_registers_without_a_module_list():
    assert {"aic20", "aic20_sim", "veri776", "vehicleid", "veriwild", "fvrid", "market1501"} <= set(DATASETS.names())
    assert issubclass(DatasetError, ReidError)


def test_unknown_dataset_names_the_close_matches(tmp_path):
    with pytest.raises(ReidUsageError, match=r"unknown dataset 'veri777'; did you mean 'veri776'.*known: aic20, "):
        load_dataset("veri777", str(tmp_path))


def test_a_second_loader_under_a_taken_name_is_refused():
    with pytest.raises(ReidError, match="dataset 'aic20' is registered twice"):
        DATASETS.register("aic20", lambda root: None)
    assert DATASETS.get("aic20").__name__ == "load_aic20"


def test_missing_root_is_named(tmp_path):
    with pytest.raises(DatasetError, match="market1501 loader: dataset root .*nowhere does not exist"):
        load_dataset("market1501", str(tmp_path / "nowhere"))


def test_loaders_do_not_import_torch(tmp_path):
    import subprocess
    import sys
    code = ("import sys; from global_model.data.datasets import DATASETS; DATASETS.names(); "
            "import global_model.data.image_io; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
