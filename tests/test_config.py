"""Config loading: file + KEY VALUE merge, _BASE_, named errors, round trip, family keys, shipped configs."""
import glob
import os

import pytest
from yacs.config import CfgNode

from global_model.config import (CONFIG_EXTENSIONS, ConfigError, add_config, get_cfg, load_config, load_config_string,
                                  save_config)
from post_processing.errors import ReidUsageError

REPO = os.path.join(os.path.dirname(__file__), "..")
CONFIG_DIR = os.path.join(REPO, "global_model", "configs")
SHIPPED = sorted(glob.glob(os.path.join(REPO, "global_model", "**", "configs", "*.yml"), recursive=True)
                 + glob.glob(os.path.join(REPO, "mgn_model", "configs", "*.yml")))


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


@pytest.mark.parametrize("opts, message", [
    (["MODEL.BAKBONE", "resnet18"], r"command line: unknown config key 'MODEL.BAKBONE'.*MODEL.BACKBONE"),
    (["NOPE.X", "1"], "unknown config key 'NOPE.X'"),
    (["SOLVER.BASE_LR", "fast"], r"'SOLVER.BASE_LR' expects a float.*'fast'"),
    (["SOLVER", "1"], "'SOLVER' is a section"),
    (["SOLVER.BASE_LR"], "KEY VALUE pairs; 'SOLVER.BASE_LR' has no value"),
    (["MODEL.MGN.POOLING", "avg"], "unknown config key 'MODEL.MGN.POOLING'"),  # MGN's keys come with MGN only
])
def test_bad_command_line_override_is_a_usage_error(opts, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(None, opts)
    assert isinstance(info.value, ReidUsageError)


@pytest.mark.parametrize("text, message", [
    ("TEST:\n  FLIP: 1\n", "expects a bool"),
    ("SOLVER: [\n", "not valid YAML"),
    ("- a\n- b\n", "must be a mapping of keys, got list"),
])
def test_bad_config_file_names_the_file(tmp_path, text, message):
    path = write(tmp_path / "t.yml", text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert path in str(info.value)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found: .*missing.yml"):
        load_config("missing.yml")


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


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: os.path.relpath(p, REPO))
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.SOLVER.IMS_PER_BATCH % cfg.DATALOADER.NUM_INSTANCE == 0
    assert cfg != get_cfg(cfg.MODEL.META_ARCH)


@pytest.fixture
def families():
    """Two throw-away families registered from this file: ``cfg_family`` (the config's) and ``cfg_other``."""
    def adds(section):
        def add(cfg):
            cfg.MODEL[section] = CfgNode({"DEPTH": 3})
        return add

    add_config("cfg_family")(adds("CFG_FAMILY"))
    add_config("cfg_other")(adds("CFG_OTHER"))
    yield
    CONFIG_EXTENSIONS.unregister("cfg_family")
    CONFIG_EXTENSIONS.unregister("cfg_other")


def test_family_keys_come_with_the_family(families, tmp_path):
    """A family registered from this file alone adds its keys; they exist only when MODEL.META_ARCH names it."""
    path = write(tmp_path / "unit.yml", "MODEL:\n  META_ARCH: cfg_family\n  CFG_FAMILY:\n    DEPTH: 5\n")
    child = write(tmp_path / "child.yml", "_BASE_: unit.yml\nSOLVER:\n  MAX_EPOCHS: 2\n")
    assert load_config(child).MODEL.CFG_FAMILY.DEPTH == 5  # META_ARCH read from the _BASE_ chain first
    assert load_config(None, ["MODEL.META_ARCH", "cfg_family"]).MODEL.CFG_FAMILY.DEPTH == 3
    assert load_config_string(load_config(path).dump()).MODEL.CFG_FAMILY.DEPTH == 5  # a stored config reloads
    assert "CFG_FAMILY" not in get_cfg().MODEL
    with pytest.raises(ConfigError, match="unknown config key 'MODEL.CFG_FAMILY.DEPTH'"):
        load_config(None, ["MODEL.CFG_FAMILY.DEPTH", "5"])


def test_stored_config_of_the_old_layout_loads(families):
    """Checkpoints written before the families owned their keys: other families' sections are dropped, the
    config's own top-level section moves under MODEL; an unknown section that is no family's still fails."""
    old = load_config(None, ["MODEL.META_ARCH", "cfg_family"]).dump() + (
        "CFG_FAMILY:\n  DEPTH: 7\nCFG_OTHER:\n  DEPTH: 1\n")
    old = old.replace("MODEL:\n", "MODEL:\n  MGN:\n    POOLING: avg\n  CFG_OTHER:\n    DEPTH: 1\n", 1)
    cfg = load_config_string(old)
    assert cfg.MODEL.CFG_FAMILY.DEPTH == 7 and "MGN" not in cfg.MODEL and "CFG_OTHER" not in cfg.MODEL
    baseline = get_cfg().dump().replace("MODEL:\n", "MODEL:\n  MGN:\n    POOLING: avg\n", 1)
    assert load_config_string(baseline) == load_config(None)
    with pytest.raises(ConfigError, match="unknown config key 'OLD.KEY'"):
        load_config_string(get_cfg().dump() + "OLD:\n  KEY: 1\n")


def test_mgn_keys_live_in_mgn_model():
    cfg = get_cfg("mgn")
    assert cfg.MODEL.META_ARCH == "mgn" and cfg.MODEL.MGN.BRANCHES == ["g", "h2", "h3", "v2"]
    assert "MGN" not in get_cfg().MODEL


def test_mgn_tiny_is_tiny_cpu_plus_mgn_changes():
    tiny = load_config(os.path.join(CONFIG_DIR, "tiny_cpu.yml"))
    mgn = load_config(os.path.join(REPO, "mgn_model", "configs", "mgn_tiny.yml"))
    assert mgn.MODEL.META_ARCH == "mgn" and mgn.MODEL.BACKBONE == tiny.MODEL.BACKBONE
    for section in ("INPUT", "DATASETS", "DATALOADER", "TEST"):
        assert mgn[section] == tiny[section], section
    assert {k for k in tiny.SOLVER if mgn.SOLVER[k] != tiny.SOLVER[k]} == {"MAX_EPOCHS"}


def test_competition_config_is_the_aic20_5th_recipe():
    cfg = load_config(os.path.join(CONFIG_DIR, "aic20_seresnext101.yml"))
    assert "resnext101" in cfg.MODEL.BACKBONE and cfg.MODEL.LAST_STRIDE == 1 and cfg.MODEL.REDUCTION_DIM == 2048
    assert cfg.INPUT.RESIZE_TRAIN == [310, 414] and cfg.INPUT.SIZE_TRAIN == [288, 384]
    assert cfg.DATALOADER.NUM_INSTANCE == 4 and cfg.LOSS.CE_WEIGHT > 0 and cfg.LOSS.TRIPLET_WEIGHT > 0
    assert cfg.SOLVER.STEPS == [450, 600, 800] and cfg.SOLVER.MAX_EPOCHS == 900
