"""The synthetic foggy-vehicle benchmark: layout, loaders, fog pairs, difficulty, the plan and determinism."""
import dataclasses
import json
import os
import re
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from global_model.cli import main
from global_model.data.datasets import load_dataset
from global_model.data.synth import REAL_PID_BASE, TEST_SIGHTINGS, SynthError, generate, plan
from global_model.data.synth.fvrid_clear import clear_view_jobs
from global_model.data.synth.lowres_views import LOWRES_VIEWS
from post_processing.errors import ReidUsageError

# Enough test identities that colour alone cannot single a vehicle out, small enough to be quick.
IDS = 72


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    summary = generate(str(root), seed=0, ids=IDS, real_ids=6, workers=1)
    return str(root), summary


def _labels(path):
    """``[(name, pid, camid, foggy)]`` of an AIC label file (declared gb2312, so parsed from bytes)."""
    root = ET.fromstring(open(path, "rb").read().replace(b'encoding="gb2312"', b'encoding="ascii"'))
    return [(it.get("imageName"), int(it.get("vehicleID")), int(it.get("cameraID")[1:]), it.get("foggy") == "1")
            for it in root.iter("Item")]


def _lines(path):
    with open(path, "rb") as f:
        return f.read().decode("ascii").split("\n")


def test_name_lists_and_image_folders_match(bench):
    root, summary = bench
    assert json.load(open(os.path.join(root, "summary.json")))["images"] == summary["images"]
    for split, folder, key in (("train", "image_train", "train"), ("query", "image_query", "query"),
                               ("test", "image_test", "gallery")):
        names = _lines(os.path.join(root, f"name_{split}.txt"))
        assert names[-1] == "" and names[:-1] == [f"{i:06d}.jpg" for i in range(1, len(names))]
        assert sorted(os.listdir(os.path.join(root, folder))) == names[:-1]
        assert len(names) - 1 == summary["images"][key]


@pytest.mark.parametrize("split", ["train", "query", "test"])
def test_label_files_follow_the_aic_schema(bench, split):
    root, _ = bench
    path = os.path.join(root, f"{split}_label.xml")
    raw = open(path, "rb").read()
    names = _lines(os.path.join(root, f"name_{split}.txt"))[:-1]
    assert raw.startswith(b'<?xml version="1.0" encoding="gb2312"?>\n<TrainingImages')
    assert f'<Items number="{len(names)}">'.encode() in raw
    assert [x[0] for x in _labels(path)] == names
    assert all(re.fullmatch(r'vehicleID="\d{4}" cameraID="c\d{3}"', m) for m in
               re.findall(r'vehicleID="[^"]*" cameraID="[^"]*"', raw.decode("ascii")))


def test_train_and_test_identities_are_disjoint(bench):
    root, _ = bench
    train_ids = {x[1] for x in _labels(os.path.join(root, "train_label.xml"))}
    test_ids = {x[1] for x in _labels(os.path.join(root, "test_label.xml"))}
    assert len(train_ids) == IDS // 2 and len(test_ids) == IDS - IDS // 2 and not train_ids & test_ids


def test_gallery_tracks_are_whole_single_camera_tracks(bench):
    root, summary = bench
    gallery = {x[0]: x for x in _labels(os.path.join(root, "test_label.xml"))}
    tracks, track_ids = _lines(os.path.join(root, "test_track.txt")), _lines(os.path.join(root, "test_track_id.txt"))
    assert tracks[-1] == "" and track_ids[-1] == "" and len(tracks) == summary["tracks"]["gallery"] + 1
    seen = []
    for names_line, ids_line in zip(tracks[:-1], track_ids[:-1]):
        assert names_line.endswith(".jpg ") and ids_line.endswith(" ")  # AIC: every line ends with a space
        names = names_line.split()
        assert [int(i) for i in ids_line.split()] == [int(n[:6]) for n in names]
        lo, hi = TEST_SIGHTINGS[1]  # gallery tracks are whole test tracks: one vehicle, one camera
        assert lo <= len(names) <= hi and len({gallery[n][1:3] for n in names}) == 1
        seen += names
    assert sorted(seen) == sorted(gallery)


def test_the_plan_lists_every_file_written(bench):
    root, summary = bench
    p = plan(0, IDS, real_ids=6)
    planned = {rel for job in p.jobs + clear_view_jobs(p) for s in job.sightings for f in s.frames
               for rel, _ in f.outputs}
    written = {os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names
               if n.endswith(".jpg")}
    views = {rel for rel in written if rel.split(os.sep)[0] in LOWRES_VIEWS}  # derived from image_query, not rendered
    assert planned == written - views and p.frames == summary["images"]["rendered"]
    queries = {n for rel in planned for d, n in [os.path.split(rel)] if d == "image_query"}
    assert views == {os.path.join(v, n) for v in LOWRES_VIEWS for n in queries}


def test_the_plan_is_immutable():
    p = plan(0, 8, cameras=3, real_ids=2)
    frame = p.jobs[0].sightings[0].frames[0]
    records = (p, p.groups, p.aic[0], p.aic[0].labels[0], p.jobs[0], p.jobs[0].sightings[0], frame,
               p.cameras[0], p.jobs[0].identity, p.jobs[0].sightings[0].track)
    for record in records:
        assert dataclasses.is_dataclass(record) and record.__dataclass_params__.frozen
        field = dataclasses.fields(record)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, field, None)
    containers = (p.cameras, p.jobs, p.aic, p.real_counts, p.aic[0].labels, p.aic[0].tracks, frame.outputs)
    assert all(isinstance(c, tuple) for c in containers)


def test_the_plan_is_a_pure_function_of_its_arguments():
    first = plan(5, 10, test_ids=4, cameras=3, real_ids=4)
    assert plan(5, 10, test_ids=4, cameras=3, real_ids=4) == first
    assert plan(6, 10, test_ids=4, cameras=3, real_ids=4) != first
    assert plan(5, 10, test_ids=5, cameras=3, real_ids=4) != first


def test_queries_are_mostly_foggy_and_always_matchable(bench):
    root, summary = bench
    query = _labels(os.path.join(root, "query_label.xml"))
    gallery = _labels(os.path.join(root, "test_label.xml"))
    foggy = np.mean([q[3] for q in query])
    assert foggy >= 0.7 and summary["foggy_fraction"]["query"] == pytest.approx(foggy, abs=1e-3)
    assert 0.05 < np.mean([g[3] for g in gallery]) < 0.9  # the gallery mixes clear and foggy cameras
    for _, pid, cam, _ in query:
        assert any(g[1] == pid and g[2] != cam for g in gallery)
    assert len({(q[1], q[2]) for q in query}) == len(query)  # one image per (vehicle, camera) sighting


def test_loaders_read_both_views(bench):
    root, summary = bench
    aic = load_dataset("aic20", root)
    assert (len(aic.train), len(aic.query), len(aic.gallery)) == tuple(
        summary["images"][k] for k in ("train", "query", "gallery"))
    assert aic.extra["has_ground_truth"] and min(r.pid for r in aic.query) > max(r.pid for r in aic.train)
    assert {r.attrs["foggy"] for r in aic.gallery} == {0, 1}
    both = load_dataset("fvrid", os.path.join(root, "fvrid"), split="both")
    real = summary["images"]["fvrid_real"]
    assert (len(both.query), len(both.gallery)) == (real["query"], real["gallery"])
    assert len(both.train) == summary["images"]["train"] + real["train"]
    syn = load_dataset("fvrid", os.path.join(root, "fvrid"), split="syn")
    assert len(syn.query) + len(syn.gallery) + len(syn.train) == summary["images"]["fvrid_syn_pairs"]
    assert all(r.clear_path and os.path.basename(r.clear_path) == r.name for r in syn.train)


def test_fvrid_twins_and_the_aic_images(bench):
    root, _ = bench
    syn = os.path.join(root, "fvrid", "FVRID_syn")
    aic_bytes = {}
    for split, folder in (("train", "image_train"), ("query", "image_query"), ("test", "image_test")):
        for name, pid, cam, foggy in _labels(os.path.join(root, f"{split}_label.xml")):
            aic_bytes[(pid, cam, open(os.path.join(root, folder, name), "rb").read())] = foggy
    slopes, checked = [], 0
    for part in ("train", "query", "gallery"):
        names = sorted(os.listdir(os.path.join(syn, f"{part}_clear")))
        assert names == sorted(os.listdir(os.path.join(syn, f"{part}_foggy"))) and names
        for name in names[::4]:
            pid, cam = (int(v) for v in re.match(r"(\d{5})_c(\d{3})_\d{6}_0\.jpg$", name).groups())
            clear_b = open(os.path.join(syn, f"{part}_clear", name), "rb").read()
            foggy_b = open(os.path.join(syn, f"{part}_foggy", name), "rb").read()
            # The AIC copy is one of the twins, and the right one.
            assert aic_bytes.get((pid, cam, foggy_b)) is True or aic_bytes.get((pid, cam, clear_b)) is False
            clear = cv2.imdecode(np.frombuffer(clear_b, np.uint8), cv2.IMREAD_GRAYSCALE).astype(np.float64)
            foggy = cv2.imdecode(np.frombuffer(foggy_b, np.uint8), cv2.IMREAD_GRAYSCALE).astype(np.float64)
            # Fog scales local contrast by t < 1 (the airlight term is smooth) ...
            assert np.abs(cv2.Laplacian(foggy, -1)).mean() < np.abs(cv2.Laplacian(clear, -1)).mean()
            # ... and pulls pixels towards A: I ≈ t·J + A(1 − t), a positive slope below 1.
            slopes.append(np.cov(clear.ravel(), foggy.ravel())[0, 1] / clear.var())
            checked += 1
    assert checked > 50 and 0.05 < np.median(slopes) < 0.8 and np.mean(np.array(slopes) < 0.95) > 0.95
    real = os.path.join(root, "fvrid", "FVRID_real")
    assert sorted(os.listdir(real)) == ["gallery_foggy", "query_foggy", "train_foggy"]
    real_pids = {int(n[:5]) for d in os.listdir(real) for n in os.listdir(os.path.join(real, d))}
    assert min(real_pids) > REAL_PID_BASE and len(real_pids) == 6


def _hist_features(paths):
    """Colour histograms after per-image, per-channel standardisation (grey world), so that the
    affine effect of fog and the camera's colour gains largely cancel: a fair colour baseline."""
    feats = []
    for path in paths:
        img = cv2.imread(path).astype(np.float32)
        h, w = img.shape[:2]
        img = img[h // 6:h - h // 6, w // 8:w - w // 8].reshape(-1, 3)
        img = np.clip((img - img.mean(0)) / (img.std(0) + 1e-3) * 40 + 128, 0, 255).astype(np.uint8)
        hist = cv2.calcHist([img.reshape(1, -1, 3)], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3).ravel()
        hist = np.sqrt(hist / hist.sum())
        feats.append(hist / np.linalg.norm(hist))
    return np.stack(feats)


def _mean_ap(dist, q_ids, q_cams, g_ids, g_cams):
    """Market-style mAP: gallery images of the query's vehicle on the query's camera are dropped."""
    aps = []
    for row, pid, cam in zip(dist, q_ids, q_cams):
        keep = ~((g_ids == pid) & (g_cams == cam))
        match = g_ids[keep][np.argsort(row[keep], kind="stable")] == pid
        precision = np.cumsum(match) / np.arange(1, match.size + 1)
        aps.append((precision * match).sum() / match.sum())
    return float(np.mean(aps))


def test_colour_histograms_do_not_solve_the_foggy_queries(bench):
    root, _ = bench
    query = [q for q in _labels(os.path.join(root, "query_label.xml")) if q[3]]
    gallery = _labels(os.path.join(root, "test_label.xml"))
    qf = _hist_features([os.path.join(root, "image_query", q[0]) for q in query])
    gf = _hist_features([os.path.join(root, "image_test", g[0]) for g in gallery])
    ids = [np.array([x[1] for x in s]) for s in (query, gallery)]
    cams = [np.array([x[2] for x in s]) for s in (query, gallery)]
    hist_map = _mean_ap(1 - qf @ gf.T, ids[0], cams[0], ids[1], cams[1])
    rng = np.random.default_rng(0)
    random_map = np.mean([_mean_ap(rng.random((len(query), len(gallery))), ids[0], cams[0], ids[1], cams[1])
                          for _ in range(5)])
    assert hist_map < 0.5  # colour alone cannot tell near-duplicate colours and marks apart in fog
    assert hist_map > 2 * random_map  # but the images do carry the vehicle's colour: not noise


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    args = ["synth", "--ids", "6", "--cameras", "3", "--real-ids", "2", "--size", "48", "64"]
    assert main(args + ["--out", str(tmp_path / "a"), "--seed", "3", "--workers", "1"]) == 0
    assert main(args + ["--out", str(tmp_path / "b"), "--seed", "3", "--workers", "2"]) == 0
    assert main(args + ["--out", str(tmp_path / "c"), "--seed", "4", "--workers", "1"]) == 0

    def files(root):
        out = {}
        for dirpath, _, names in os.walk(root):
            for n in names:
                if n != "summary.json":  # holds the run time
                    path = os.path.join(dirpath, n)
                    out[os.path.relpath(path, root)] = open(path, "rb").read()
        return out

    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert len(a) > 40 and a == b  # every name list, label file and image, whatever the worker count
    assert a["train_label.xml"] != c["train_label.xml"] and a["image_train/000001.jpg"] != c["image_train/000001.jpg"]
    assert cv2.imread(str(tmp_path / "a" / "image_train" / "000001.jpg")).shape == (48, 64, 3)


def test_rerun_replaces_the_previous_dataset_only(tmp_path):
    generate(str(tmp_path), seed=0, ids=8, cameras=3, real_ids=2, size=(48, 64))
    (tmp_path / "notes.txt").write_text("mine")
    summary = generate(str(tmp_path), seed=0, ids=4, cameras=3, real_ids=0, size=(48, 64))
    assert len(os.listdir(tmp_path / "image_test")) == summary["images"]["gallery"]
    assert not (tmp_path / "fvrid" / "FVRID_real").exists() and (tmp_path / "notes.txt").read_text() == "mine"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".synth-staging")]


def test_test_ids_sets_the_split(tmp_path):
    """--test-ids: the demo trains on more identities than it tests on (from scratch, ids matter most)."""
    summary = generate(str(tmp_path), seed=0, ids=10, test_ids=3, cameras=3, real_ids=0, size=(48, 64))
    assert summary["ids"]["train"] == 7 and summary["ids"]["test"] == 3
    train = {ln.split('vehicleID="')[1][:4] for ln in (tmp_path / "train_label.xml").read_text().splitlines()
             if "vehicleID" in ln}
    test = {ln.split('vehicleID="')[1][:4] for ln in (tmp_path / "test_label.xml").read_text().splitlines()
            if "vehicleID" in ln}
    assert len(train) == 7 and len(test) == 3 and not train & test


@pytest.mark.parametrize("argv, message", [
    (["--ids", "3"], "ids must be"),
    (["--size", "16", "64"], "size must be"),
    (["--cameras", "1"], "cameras must be"),
    (["--real-ids", "1"], "real_ids must be"),
    (["--seed", "-1"], "seed must be"),
    (["--ids", "10", "--test-ids", "9"], "test_ids must leave"),
])
def test_bad_arguments_are_refused(tmp_path, capsys, argv, message):
    assert main(["synth", "--out", str(tmp_path / "x")] + argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_generate_raises_a_usage_error_and_prints_nothing(tmp_path, capsys):
    with pytest.raises(SynthError, match="cameras must be") as info:
        generate(str(tmp_path / "x"), ids=8, cameras=1)
    assert isinstance(info.value, ReidUsageError) and capsys.readouterr() == ("", "")
