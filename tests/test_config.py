"""Config loading: file + KEY VALUE merge, _BASE_ inheritance, named errors, round trip, shipped configs."""
import glob
import os

import pytest

from global_model.config import ConfigError, get_cfg, load_config, load_config_string, save_config

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "global_model", "configs")


def write(path, text):
    path.write_text(text)
    return str(path)


def test_file_then_command_line_override(tmp_path):
    cfg_file = write(tmp_path / "a.yml", "SOLVER:\n  BASE_LR: 1\n  MAX_EPOCHS: 3\nMODEL:\n  BACKBONE: resnet18\n")
    cfg = load_config(cfg_file, ["SOLVER.MAX_EPOCHS", "5", "DATASETS.TRAIN", "aic20=/x", "INPUT.SIZE_TEST", "[64, 32]"])
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)  # int accepted for a float key
    assert cfg.SOLVER.MAX_EPOCHS == 5  # command line wins over the file
    assert cfg.MODEL.BACKBONE == "resnet18"
    assert cfg.DATASETS.TRAIN == ["aic20=/x"]  # a bare string for a list-of-str key
    assert cfg.INPUT.SIZE_TEST == [64, 32]
    assert cfg.is_frozen()


def test_unknown_key_in_file_names_file_key_and_closest(tmp_path):
    cfg_file = write(tmp_path / "bad.yml", "SOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(cfg_file)
    msg = str(e.value)
    assert "bad.yml" in msg and "SOLVER.BASE_LRR" in msg and "SOLVER.BASE_LR" in msg


def test_unknown_key_on_command_line(tmp_path):
    with pytest.raises(ConfigError, match=r"command line: unknown config key 'MODEL.BAKBONE'.*MODEL.BACKBONE"):
        load_config(None, ["MODEL.BAKBONE", "resnet18"])
    with pytest.raises(ConfigError, match="unknown config key 'NOPE.X'"):
        load_config(None, ["NOPE.X", "1"])


def test_wrong_type_and_bad_pairs(tmp_path):
    with pytest.raises(ConfigError, match=r"'SOLVER.BASE_LR' expects a float.*'fast'"):
        load_config(None, ["SOLVER.BASE_LR", "fast"])
    with pytest.raises(ConfigError, match="is a section"):
        load_config(None, ["SOLVER", "1"])
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        load_config(None, ["SOLVER.BASE_LR"])
    with pytest.raises(ConfigError, match="expects a bool"):
        load_config(write(tmp_path / "t.yml", "TEST:\n  FLIP: 1\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path / "y.yml", "SOLVER: [\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.yml"))


def test_base_inheritance_and_loops(tmp_path):
    os.makedirs(tmp_path / "sub")
    write(tmp_path / "base.yml", "SOLVER:\n  BASE_LR: 0.5\n  MAX_EPOCHS: 7\n")
    child = write(tmp_path / "sub" / "child.yml", "_BASE_: ../base.yml\nSOLVER:\n  MAX_EPOCHS: 2\n")
    cfg = load_config(child)
    assert (cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_EPOCHS) == (0.5, 2)
    write(tmp_path / "l1.yml", "_BASE_: l2.yml\n")
    write(tmp_path / "l2.yml", "_BASE_: l1.yml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(str(tmp_path / "l1.yml"))


def test_save_and_reload_round_trip(tmp_path):
    cfg = load_config(None, ["SOLVER.BASE_LR", "0.123", "DATASETS.TRAIN", "['a', 'b=c']"])
    save_config(cfg, str(tmp_path / "out" / "config.yml"))
    again = load_config(str(tmp_path / "out" / "config.yml"))
    assert again == cfg
    assert load_config_string(cfg.dump(), ["SOLVER.MAX_EPOCHS", "1"]).SOLVER.MAX_EPOCHS == 1
    with pytest.raises(ConfigError, match="stored config: unknown config key 'OLD.KEY'"):
        load_config_string("OLD:\n  KEY: 1\n")


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(CONFIG_DIR, "*.yml"))),
                         ids=lambda p: os.path.basename(p))
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.SOLVER.IMS_PER_BATCH % cfg.DATALOADER.NUM_INSTANCE == 0
    assert cfg != get_cfg() or os.path.basename(path) == "defaults.yml"


def test_competition_config_is_the_aic20_5th_recipe():
    cfg = load_config(os.path.join(CONFIG_DIR, "aic20_seresnext101.yml"))
    assert "resnext101" in cfg.MODEL.BACKBONE and cfg.MODEL.LAST_STRIDE == 1 and cfg.MODEL.REDUCTION_DIM == 2048
    assert cfg.INPUT.RESIZE_TRAIN == [310, 414] and cfg.INPUT.SIZE_TRAIN == [288, 384]
    assert cfg.DATALOADER.NUM_INSTANCE == 4 and cfg.LOSS.CE_WEIGHT > 0 and cfg.LOSS.TRIPLET_WEIGHT > 0
    assert cfg.SOLVER.STEPS == [450, 600, 800] and cfg.SOLVER.MAX_EPOCHS == 900
