"""Writing a benchmark: render the plan's frames into a staging folder, add the AIC name, label and
track files and ``summary.json``, then swap the finished dataset into place entry by entry."""
from __future__ import annotations

import functools
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2

from post_processing.errors import ReidError, ReidUsageError
from post_processing.fileio import atomic_write

from .fvrid_clear import CLEAR_FOLDERS, clear_view_jobs
from .look import make_look
from .lowres_views import LOWRES_VIEWS, write_lowres_views
from .plan import FOGGY, AicSplit, Label, Plan, RenderJob, SynthError, plan
from .renderer import Renderer, face_textures
from .san_targets import SAN_TARGETS_DIR, write_san_targets
from .scene import Camera

AIC_OUTPUTS = ("image_train", "image_query", "image_test", "name_train.txt", "name_query.txt", "name_test.txt",
               "train_label.xml", "query_label.xml", "test_label.xml", "train_track.txt", "train_track_id.txt",
               "test_track.txt", "test_track_id.txt", "fvrid", SAN_TARGETS_DIR, "summary.json", *LOWRES_VIEWS)
MARKER = ".reid-synth"  # written into the output folder before anything there is replaced
_STAGING_PREFIX = ".synth-staging-"
_JOBS_PER_TASK = 4  # identities per worker task (each task builds its renderer once)


@dataclass(frozen=True)
class _RenderSettings:
    seed: int
    cameras: Tuple[Camera, ...]
    size: Tuple[int, int]
    stage: str  # the staging folder the relative output paths are under


class SynthOutputError(ReidUsageError):
    """An ``--out`` folder that holds other data than an earlier synth output (``--force`` overrides)."""


def _render_jobs(settings: _RenderSettings, jobs: Sequence[RenderJob]) -> int:
    """Render and write every frame of ``jobs``; returns the number of frames."""
    renderer = Renderer(settings.seed, settings.cameras, settings.size)
    count = 0
    for job in jobs:
        look = make_look(job.identity)
        textures = face_textures(look)
        for sighting in job.sightings:
            for frame in sighting.frames:
                foggy, clear = renderer.photograph(look, textures, sighting.track, frame.index, job.real)
                # Plain writes: everything goes to a private staging folder moved into place at the end.
                for rel, twin in frame.outputs:
                    with open(os.path.join(settings.stage, rel), "wb") as f:
                        f.write(foggy if twin == FOGGY else clear)
                count += 1
    return count


def _init_worker() -> None:
    cv2.setNumThreads(1)


def _render(settings: _RenderSettings, jobs: Sequence[RenderJob], workers: int) -> int:
    """Render ``jobs`` in ``workers`` processes (the output does not depend on it); returns the frame count."""
    if workers > 1:
        tasks = [jobs[i:i + _JOBS_PER_TASK] for i in range(0, len(jobs), _JOBS_PER_TASK)]
        with multiprocessing.get_context().Pool(workers, _init_worker) as pool:
            return sum(pool.imap_unordered(functools.partial(_render_jobs, settings), tasks))
    threads = cv2.getNumThreads()
    _init_worker()
    try:
        return _render_jobs(settings, jobs)
    finally:
        cv2.setNumThreads(threads)


def _write_text(path: str, text: str, encoding: str = "ascii") -> None:
    with atomic_write(path, "w", encoding=encoding, newline="\n") as f:
        f.write(text)


def _label_xml(labels: Sequence[Label]) -> str:
    """An AIC label file (declared gb2312, as AIC's are; the content is ASCII)."""
    lines = ['<?xml version="1.0" encoding="gb2312"?>', '<TrainingImages Version="1.0">',
             f'<Items number="{len(labels)}">']
    for it in labels:
        lines.append(f'<Item imageName="{it.name}" vehicleID="{it.pid:04d}" cameraID="c{it.camid:03d}" '
                     f'colorID="{it.colour_id}" typeID="{it.type_id}" orientation="{it.orientation % 360:.1f}" '
                     f'foggy="{int(it.foggy)}" />')
    lines += ["</Items>", "</TrainingImages>", ""]
    return "\n".join(lines)


def _track_lines(split: AicSplit) -> Tuple[str, str]:
    """The AIC track files of ``split``: image names and their 1-based indices, a track per line
    (every line ends with a space, as AIC's do)."""
    index = {label.name: i + 1 for i, label in enumerate(split.labels)}
    names = "".join(" ".join(t) + " \n" for t in split.tracks)
    ids = "".join(" ".join(str(index[n]) for n in t) + " \n" for t in split.tracks)
    return names, ids


def _make_folders(stage: str, real: bool) -> None:
    for d in ("image_train", "image_query", "image_test"):
        os.makedirs(os.path.join(stage, d))
    for split in ("train", "query", "gallery"):
        for kind in ("clear", "foggy"):
            os.makedirs(os.path.join(stage, "fvrid", "FVRID_syn", f"{split}_{kind}"))
        if real:
            os.makedirs(os.path.join(stage, "fvrid", "FVRID_real", f"{split}_foggy"))


def _write_aic_lists(stage: str, splits: Sequence[AicSplit]) -> None:
    for split in splits:
        _write_text(os.path.join(stage, f"name_{split.name}.txt"), "".join(it.name + "\n" for it in split.labels))
        _write_text(os.path.join(stage, f"{split.name}_label.xml"), _label_xml(split.labels))
    for split in splits:
        if split.name != "query":
            names_txt, ids_txt = _track_lines(split)
            _write_text(os.path.join(stage, f"{split.name}_track.txt"), names_txt)
            _write_text(os.path.join(stage, f"{split.name}_track_id.txt"), ids_txt)


def _foggy_fraction(labels: Sequence[Label]) -> float:
    return round(sum(it.foggy for it in labels) / max(1, len(labels)), 4)


def _summarise(p: Plan, size: Tuple[int, int], rendered: int, workers: int, seconds: float) -> Dict[str, object]:
    """The summary of a generated benchmark (``summary.json``; the key order is part of the file)."""
    train, query, test = p.aic
    g = p.groups
    return {
        "seed": p.seed, "size": list(size), "cameras": len(p.cameras),
        "ids": {"train": len(g.train), "test": len(g.test), "real_train": len(g.real_train),
                "real_test": len(g.real_test)},
        "images": {"train": len(train.labels), "query": len(query.labels), "gallery": len(test.labels),
                   "fvrid_syn_pairs": len(train.labels) + len(query.labels) + len(test.labels),
                   "fvrid_real": dict(p.real_counts), "rendered": rendered},
        "tracks": {"train": len(train.tracks), "gallery": len(test.tracks)},
        "foggy_fraction": {"train": _foggy_fraction(train.labels), "query": _foggy_fraction(query.labels),
                           "gallery": _foggy_fraction(test.labels)},
        "cameras_fog_probability": {f"c{c.camid:03d}": round(c.fog_prob, 3) for c in p.cameras},
        "workers": workers,
        "seconds": seconds,
    }


def _swap_in(stage: str, out_dir: str, entries: Sequence[str]) -> None:
    """Replace each of ``entries`` in ``out_dir`` by the staged one (other files there are kept)."""
    for entry in entries:
        src, dst = os.path.join(stage, entry), os.path.join(out_dir, entry)
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        elif os.path.lexists(dst):
            os.unlink(dst)
        os.replace(src, dst)


def _is_synth_output(out_dir: str) -> bool:
    """Whether ``out_dir`` holds the marker, or the ``summary.json`` of a synth output made before it."""
    if os.path.isfile(os.path.join(out_dir, MARKER)):
        return True
    try:
        with open(os.path.join(out_dir, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and {"seed", "ids", "images", "foggy_fraction"} <= summary.keys()


def _prepare_out_dir(out_dir: str, force: bool) -> None:
    """Create ``out_dir``; refuse a non-empty folder that is not an earlier synth output unless ``force``."""
    if os.path.isdir(out_dir) and not force and not _is_synth_output(out_dir):
        kept = [e for e in os.listdir(out_dir) if not e.startswith(_STAGING_PREFIX)]
        if kept:
            raise SynthOutputError(f"--out {out_dir}: the folder is not empty and is not an earlier synth output "
                                   f"(no {MARKER}); synth would replace the image folders, name lists and "
                                   "labels there. Choose an empty folder, or pass --force")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise ReidError(f"--out {out_dir}: cannot create the folder ({exc.strerror or exc})") from None


def _check_size(size: Sequence[int]) -> Tuple[int, int]:
    h, w = (int(v) for v in size)
    if not 32 <= h <= 1024 or not 32 <= w <= 1024:
        raise SynthError(f"size must be two integers H W in 32..1024, got {size}")
    return h, w


def generate(out_dir: str, seed: int = 0, ids: int = 240, size: Tuple[int, int] = (96, 128), cameras: int = 6,
             real_ids: Optional[int] = None, workers: int = 1, test_ids: Optional[int] = None,
             force: bool = False) -> Dict[str, object]:
    """Generate the benchmark into ``out_dir`` and return the summary (also ``out_dir/summary.json``).

    ``ids`` identities are split into ``test_ids`` test identities (default half) and the rest
    for training (disjoint, as in AIC); ``real_ids`` more
    (default ``max(4, ids // 4)``) make up ``fvrid/FVRID_real``. Rendering runs in ``workers``
    processes; the output does not depend on it. Earlier outputs in ``out_dir`` are replaced only
    once the new dataset is complete. Raises :class:`SynthError` for a setting out of range,
    :class:`SynthOutputError` for a non-empty ``out_dir`` without the synth marker (unless ``force``)
    and :class:`ReidError` when ``out_dir`` cannot be created.
    """
    start = time.time()
    hw = _check_size(size)
    p = plan(seed, ids, test_ids=test_ids, cameras=cameras, real_ids=real_ids)
    out_dir = os.path.abspath(out_dir)
    _prepare_out_dir(out_dir, force)
    stage = os.path.join(out_dir, f"{_STAGING_PREFIX}{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        try:
            _make_folders(stage, real=bool(p.groups.real_train or p.groups.real_test))
        except OSError as exc:
            raise ReidError(f"--out {out_dir}: cannot write there ({exc.strerror or exc})") from None
        settings = _RenderSettings(seed, p.cameras, hw, stage)
        rendered = _render(settings, p.jobs, workers)
        clear_jobs = clear_view_jobs(p)  # the FVRID_clear view: not in the plan nor in the summary's counts
        for folder in CLEAR_FOLDERS if clear_jobs else ():
            os.makedirs(os.path.join(stage, folder))
        _render(settings, clear_jobs, workers)
        write_san_targets(stage, p, hw)
        _write_aic_lists(stage, p.aic)
        write_lowres_views(stage, [it.name for it in p.aic[1].labels])
        summary = _summarise(p, hw, rendered, workers, round(time.time() - start, 2))
        _write_text(os.path.join(stage, "summary.json"), json.dumps(summary, indent=2) + "\n")
        _write_text(os.path.join(out_dir, MARKER), "written by python -m global_model synth\n")
        _swap_in(stage, out_dir, AIC_OUTPUTS)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return summary


def format_summary(summary: Dict[str, object], out_dir: str) -> str:
    """The printed summary of a ``generate`` result (``make demo`` prints it from summary.json)."""
    ids, img, fog = summary["ids"], summary["images"], summary["foggy_fraction"]
    real = img["fvrid_real"]
    lines: List[str] = [
        f"synthetic foggy-vehicle benchmark at {out_dir} (seed {summary['seed']}, {summary['size'][0]}x"
        f"{summary['size'][1]}, {summary['cameras']} cameras)",
        f"  ids      train {ids['train']}  test {ids['test']}  (FVRID_real: train {ids['real_train']}, "
        f"test {ids['real_test']})",
        f"  images   train {img['train']}  query {img['query']}  gallery {img['gallery']}  "
        f"(FVRID_syn pairs {img['fvrid_syn_pairs']}, FVRID_real {real['train']}/{real['query']}/{real['gallery']})",
        f"  foggy    train {fog['train']:.0%}  query {fog['query']:.0%}  gallery {fog['gallery']:.0%}",
        f"  time     {summary['seconds']} s ({summary['workers']} workers, {img['rendered']} frames rendered)",
    ]
    return "\n".join(lines)
