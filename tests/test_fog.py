"""Fog synthesis: the scattering formula, the depth prior, depth-map reading and the ``fog`` command."""
import os

import cv2
import numpy as np
import pytest

from global_model.cli import main
from global_model.data.fog import FogError, FogUsageError, add_fog, fog_folder, ground_plane_depth, load_depth
from post_processing.errors import ReidUsageError


def test_add_fog_follows_the_scattering_model():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    depth = np.linspace(0, 1, 30, dtype=np.float32).reshape(6, 5)
    out = add_fog(image, depth, beta=2.0, A=0.7)
    t = np.exp(-2.0 * depth)[..., None]
    expected = image * t + 0.7 * 255 * (1 - t)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert np.abs(out - expected).max() <= 0.5 + 1e-3
    # Depth 0 leaves the image alone; deep fog converges to the airlight.
    assert np.array_equal(add_fog(image, np.zeros((6, 5)), 5.0, 0.4), image)
    assert np.all(np.abs(add_fog(image, np.ones((6, 5)), 50.0, 0.4).astype(int) - 102) <= 1)


def test_add_fog_per_channel_airlight_beta_map_and_grey_images():
    image = np.full((4, 4, 3), 100, np.uint8)
    out = add_fog(image, np.ones((4, 4)), np.full((4, 4), 40.0), (0.0, 0.5, 1.0))
    assert out[0, 0].tolist() == [0, 128, 255]
    grey = add_fog(np.full((3, 3), 200, np.uint8), np.full((3, 3), 0.5), 1.0, 0.4)
    assert grey.shape == (3, 3) and 102 < grey[0, 0] < 200


@pytest.mark.parametrize("kwargs, message", [
    (dict(image=np.zeros((4, 4, 3), np.float32)), "uint8"),
    (dict(depth=np.zeros((3, 4))), "depth shape"),
    (dict(depth=np.full((4, 4), 1.5)), "normalised"),
    (dict(beta=np.ones((2, 2))), "beta"),
    (dict(A=1.2), "A must be"),
    (dict(A=(0.5, 0.5)), "A must be"),
])
def test_add_fog_rejects_bad_input(kwargs, message):
    args = dict(image=np.zeros((4, 4, 3), np.uint8), depth=np.zeros((4, 4)), beta=1.0, A=0.5)
    args.update(kwargs)
    with pytest.raises(FogError, match=message):
        add_fog(**args)


def test_ground_plane_depth_grows_towards_the_horizon():
    d = ground_plane_depth(20, 3, horizon=0.3, near=0.1, far=0.9, max_distance=5.0)
    column = d[:, 0]
    assert d.shape == (20, 3) and d.dtype == np.float32 and np.all(d == d[:, :1])
    assert np.all(np.diff(column) <= 0)  # farther up the image
    assert column[:6].tolist() == pytest.approx([0.9] * 6)  # at and above the horizon: far
    assert 0.1 <= column[-1] < 0.15 and column.min() >= 0.1
    default = ground_plane_depth(8, 8)
    assert 0 <= default.min() and default.max() <= 1 and default[0, 0] > default[-1, 0]
    with pytest.raises(FogError, match="near <= far"):
        ground_plane_depth(4, 4, near=0.8, far=0.2)


def test_load_depth_formats_and_normalisation(tmp_path):
    ramp = np.tile(np.arange(8, dtype=np.float64)[:, None], (1, 6))
    cv2.imwrite(str(tmp_path / "a.png"), (ramp * 30).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), (ramp * 9000).astype(np.uint16))
    np.save(tmp_path / "c.npy", ramp * 0.01 + 3.0)
    for name in ("a.png", "b.png", "c.npy"):
        d = load_depth(str(tmp_path / name), (8, 6))
        assert d.min() == 0 and d.max() == pytest.approx(1) and d[7, 0] > d[0, 0]
    assert load_depth(str(tmp_path / "c.npy"), (8, 6), inverse=True)[0, 0] == pytest.approx(1)
    assert load_depth(str(tmp_path / "a.png"), (16, 12)).shape == (16, 12)


@pytest.mark.parametrize("name, write, message", [
    ("flat.npy", lambda path: np.save(path, np.ones((4, 4))), "constant"),
    ("nan.npy", lambda path: np.save(path, np.array([[0.0, np.nan], [1.0, 2.0]])), "NaN"),
    ("junk.png", lambda path: path.write_bytes(b"not a png"), "cannot read"),
])
def test_load_depth_rejects_bad_maps(tmp_path, name, write, message):
    write(tmp_path / name)
    with pytest.raises(FogError, match=message):
        load_depth(str(tmp_path / name), (4, 4))


def _clear_images(src):
    """Three lossless 24x32 images, one in a sub-folder, with texture so fog visibly flattens them."""
    rng = np.random.default_rng(1)
    paths = ["0001_c001_00000001_0.png", "0002_c002_00000005_0.png", os.path.join("sub", "0003_c001_00000009_0.png")]
    for rel in paths:
        os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
        cv2.imwrite(os.path.join(src, rel), rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    return paths


def test_fog_command_ground_plane_prior_writes_fvrid_pairs(tmp_path):
    src, out = tmp_path / "clear", tmp_path / "out"
    rels = _clear_images(str(src))
    assert main(["fog", "--src", str(src), "--out", str(out), "--split", "query", "--workers", "1"]) == 0
    for rel in rels:
        original = (src / rel).read_bytes()
        assert (out / "query_clear" / rel).read_bytes() == original  # the clear twin is the original file
        clear = cv2.imread(str(src / rel)).astype(np.float32)
        foggy = cv2.imread(str(out / "query_foggy" / rel)).astype(np.float32)
        assert foggy.std() < 0.8 * clear.std()  # fog flattens contrast ...
        change = np.abs(foggy - clear).mean(axis=(1, 2))
        assert change[:8].mean() > change[-8:].mean()  # ... more at the top (farther on the ground plane)
    first = (out / "query_foggy" / rels[0]).read_bytes()
    assert main(["fog", "--src", str(src), "--out", str(out), "--split", "query", "--workers", "2"]) == 0
    assert (out / "query_foggy" / rels[0]).read_bytes() == first  # per-image seeds: order/workers do not matter
    assert main(["fog", "--src", str(src), "--out", str(tmp_path / "s1"), "--split", "query", "--seed", "1"]) == 0
    assert (tmp_path / "s1" / "query_foggy" / rels[0]).read_bytes() != first


def test_fog_command_uses_depth_maps(tmp_path, capsys):
    src, out, depth_dir = tmp_path / "clear", tmp_path / "out", tmp_path / "depth"
    rels = _clear_images(str(src))
    half = np.zeros((12, 16), np.uint16)
    half[:, 8:] = 65535  # left half at depth 0 (no fog), right half at depth 1; given at half resolution
    (depth_dir / "sub").mkdir(parents=True)
    for rel in rels[:2]:
        cv2.imwrite(str(depth_dir / (os.path.splitext(rel)[0] + ".png")), half)
    np.save(depth_dir / (os.path.splitext(rels[2])[0] + ".npy"), half.astype(np.float32))
    assert main(["fog", "--src", str(src), "--out", str(out), "--depth-dir", str(depth_dir)]) == 0
    for rel in rels:
        clear = cv2.imread(str(src / rel)).astype(np.float32)
        foggy = cv2.imread(str(out / "train_foggy" / rel)).astype(np.float32)
        assert np.abs(foggy[:, :14] - clear[:, :14]).max() <= 1  # depth 0: untouched
        right = foggy[:, 18:]
        assert right.std() < 0.5 * clear[:, 18:].std()  # depth 1 with beta >= 1: mostly airlight
    assert main(["fog", "--src", str(src), "--out", str(out), "--depth-dir", str(depth_dir), "--inverse-depth"]) == 0
    flipped = cv2.imread(str(out / "train_foggy" / rels[0])).astype(np.float32)
    assert np.abs(flipped[:, 18:] - cv2.imread(str(src / rels[0]))[:, 18:]).max() <= 1

    os.remove(depth_dir / (os.path.splitext(rels[1])[0] + ".png"))
    assert main(["fog", "--src", str(src), "--out", str(tmp_path / "none"), "--depth-dir", str(depth_dir)]) == 1
    err = capsys.readouterr().err
    assert "no depth map for image" in err and rels[1] in err
    assert not (tmp_path / "none").exists()  # checked before anything is written


@pytest.mark.parametrize("src, out, extra, code, message", [
    ("empty", "o", [], 1, "holds no images"),  # the input is at fault: a runtime error
    ("missing", "o", [], 2, "is not a directory"),  # the options are: usage errors
    ("src", "src/fogged", [], 2, "must not be inside --src"),
    ("src", "o", ["--seed", "-1"], 2, "non-negative"),
    ("src", "o", ["--split", ".hidden"], 2, "plain folder-name prefix"),
])
def test_fog_command_rejects_bad_arguments(tmp_path, capsys, src, out, extra, code, message):
    (tmp_path / "empty").mkdir()
    _clear_images(str(tmp_path / "src"))
    assert main(["fog", "--src", str(tmp_path / src), "--out", str(tmp_path / out)] + extra) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / out).exists()


def test_fog_folder_raises_and_prints_nothing(tmp_path, capsys):
    with pytest.raises(FogUsageError, match="is not a directory") as info:
        fog_folder(str(tmp_path / "missing"), str(tmp_path / "o"))
    assert isinstance(info.value, ReidUsageError) and capsys.readouterr() == ("", "")
