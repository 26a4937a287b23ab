"""Registry of dataset loaders, ``load_dataset(name, root, **kwargs) -> DatasetSplits``, and the one
way of merging training sets (:func:`merge_train_sets`).

A loader is a function ``fn(root, **kwargs) -> DatasetSplits`` registered with ``@register("name")``
in any module of this package (every module is imported when a name is looked up, so a new
loader is one new file) or in a third-party module named in the ``reid_ensemble.plugins``
entry-point group. Loaders read the real formats exactly as shipped and never import torch, so
the ensemble CLI can use them to read name lists, tracks and ground truth.

Each loaded dataset declares how it is evaluated (``DatasetSplits.protocol``: a name of
:data:`post_processing.protocols.PROTOCOLS` plus its options) and which boolean query attributes
are scored on their own (``subsets``); training validation, ``extract`` and every ``ensemble``
command read them from here. Entries are written ``name``, ``name=path`` or
``name(key=value, ...)=path`` (:func:`parse_dataset_spec`, :func:`load_dataset_entry`).
"""
from __future__ import annotations

import ast
import inspect
import os
import re
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from post_processing.errors import ReidError
from post_processing.registry import Registry, import_submodules

from ..records import ImageRecord

__all__ = ["DATASETS", "DatasetError", "DatasetSplits", "LoaderInfo", "describe_loader", "load_dataset",
           "load_dataset_entry", "merge_train_sets", "parse_dataset_spec", "register", "split_table"]


class DatasetError(ReidError, ValueError):
    """A dataset root that does not match its format: names the loader and what is missing/bad."""


@dataclass
class DatasetSplits:
    """Train / query / gallery records of one dataset, in the order the format lists them.

    ``extra`` holds what a format has beyond records and the ensemble reads (AIC20: ``tracks``,
    ``has_ground_truth``). ``protocol``/``protocol_options`` name the evaluation protocol (a
    ``PROTOCOLS`` entry and its keyword arguments) and ``protocol_label`` says it in words for logs
    and the metrics JSON; ``subsets`` are query attributes (truthy/falsy) whose queries are also
    scored on their own; ``notes`` are facts a run reports (counts that differ from the published
    ones, an evaluation without cameras).
    """

    name: str
    root: str
    train: List[ImageRecord] = field(default_factory=list)
    query: List[ImageRecord] = field(default_factory=list)
    gallery: List[ImageRecord] = field(default_factory=list)
    extra: Dict[str, object] = field(default_factory=dict)
    protocol: str = "market"
    protocol_options: Dict[str, Any] = field(default_factory=dict)
    protocol_label: str = "Market-1501 rules (same id and camera is junk)"
    subsets: Tuple[str, ...] = ()
    notes: List[str] = field(default_factory=list)

    def protocol_json(self) -> Dict[str, Any]:
        """What the metrics JSON records under ``protocol``."""
        return {"name": self.protocol, "options": dict(self.protocol_options), "dataset": self.name,
                "label": self.protocol_label}


class LoaderInfo(NamedTuple):
    """What ``datasets`` commands list about a loader: its layout and protocol in words."""

    layout: str
    protocol: str


def _discover(_name: Optional[str]) -> None:
    import_submodules(__name__)


# name -> fn(root, **kwargs) -> DatasetSplits
DATASETS: Registry = Registry("dataset", discover=_discover)


_INFO: Dict[str, LoaderInfo] = {}
# Keywords the commands pass themselves (not options a user writes in a dataset entry).
_INTERNAL = ("root", "train", "require_images")


def register(name: str, layout: str = "", protocol: str = "Market-1501 rules") -> Callable:
    """Decorator registering a loader function ``fn(root, **kwargs) -> DatasetSplits`` as ``name``;
    ``layout`` and ``protocol`` describe it for ``python -m global_model datasets``."""
    def deco(fn: Callable) -> Callable:
        _INFO[name] = LoaderInfo(layout, protocol)
        return DATASETS.register(name)(fn)

    return deco


def describe_loader(name: str) -> Dict[str, Any]:
    """``{"name", "layout", "protocol", "options": {key: default}}`` of a registered loader."""
    fn = DATASETS.get(name)
    info = _INFO.get(name, LoaderInfo((fn.__doc__ or "").strip().split("\n")[0], "Market-1501 rules"))
    options = {p.name: (None if p.default is inspect.Parameter.empty else p.default)
               for p in inspect.signature(fn).parameters.values() if p.name not in _INTERNAL}
    return {"name": name, "layout": info.layout, "protocol": info.protocol, "options": options}


def load_dataset(name: str, root: str, **kwargs) -> DatasetSplits:
    """Load dataset ``name`` from ``root``; an unknown name raises with the closest known names.

    ``val_ids`` (N or a fraction) and ``val_seed``, for every loader, hold training identities out as a
    validation split (:mod:`.validation`); not when the caller asked the loader for no training split
    (``train=False``)."""
    val = {k: kwargs.pop(k) for k in ("val_ids", "val_seed") if k in kwargs}
    splits = DATASETS.get(name)(root, **kwargs)
    if val.get("val_ids") is None or kwargs.get("train") is False:
        return splits
    from .validation import carve_validation

    return carve_validation(splits, val["val_ids"], val.get("val_seed", 0))


_NAME = re.compile(r"^\s*([\w.-]+)\s*")


def _option_value(text: str) -> Any:
    """A Python literal, else the text; a regex such as ``'c(\\d+)'`` keeps its backslash quietly."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in quoted regexes
            return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _split_options(text: str, spec: str) -> Tuple[List[str], str]:
    """``text`` starts after ``(``: the comma-separated items up to the matching ``)`` (commas and
    brackets inside quotes or nested brackets belong to the value) and what follows it."""
    items, depth, quote, current = [], 0, "", ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}" and depth:
            depth -= 1
        elif ch == ")":
            return items + [current], text[i + 1:]
        elif ch == "," and not depth:
            items.append(current)
            current = ""
            continue
        current += ch
    raise DatasetError(f"bad dataset entry {spec!r}: the loader options lack their closing ')'")


def parse_dataset_spec(spec: str, default_root: str) -> Tuple[str, str, Dict[str, Any]]:
    """``"name"`` → (name, default_root, {}); ``"name=path"`` → (name, path, {}) with a relative
    ``path`` taken inside ``default_root`` (``DATASETS.ROOT``); loader keyword arguments go in
    brackets, e.g. ``"fvrid(split=both)=fvrid"`` → (fvrid, ROOT/fvrid, {"split": "both"}) (values
    are Python literals, else strings; quote a value holding commas or brackets:
    ``folder(camera='c(\\d+)')=mine``)."""
    match = _NAME.match(spec)
    rest = spec[match.end():] if match else ""
    items: List[str] = []
    if match and rest.startswith("("):
        items, rest = _split_options(rest[1:], spec)
        rest = rest.lstrip()
    path = rest[1:] if rest.startswith("=") else None
    if not match or (rest and path is None) or (path is not None and not path.strip()):
        raise DatasetError(f"bad dataset entry {spec!r}: expected 'name', 'name=path' or "
                           f"'name(key=value, ...)=path'")
    options: Dict[str, Any] = {}
    for item in items:
        if not item.strip():
            continue
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key.isidentifier():
            raise DatasetError(f"bad loader option {item.strip()!r} in dataset entry {spec!r}: expected key=value")
        options[key] = _option_value(value)
    return match.group(1), (os.path.join(default_root, path.strip()) if path is not None else default_root), options


def load_dataset_entry(spec: str, default_root: str, root_override: Optional[str] = None, train: bool = True,
                       **internal: Any) -> DatasetSplits:
    """Load one dataset entry (see :func:`parse_dataset_spec`); ``root_override`` replaces its folder.

    ``train=False``: the caller needs query and gallery only; a loader with a ``train`` keyword is
    told so and does not read its training labels and images. ``internal`` are further keywords a
    command passes (``require_images=False``), given only to loaders that take them, and ``val_ids``/
    ``val_seed`` (every loader, :func:`load_dataset`); the entry's own options win."""
    name, root, options = parse_dataset_spec(spec, default_root)
    root = root_override or root
    if not root or not os.path.isdir(root):
        raise DatasetError(f"dataset {name!r}: root folder {root!r} does not exist")
    accepted = inspect.signature(DATASETS.get(name)).parameters
    given = {key: value for key, value in {"train": train, **internal}.items()
             if (key in accepted or key in ("val_ids", "val_seed")) and not (key == "train" and value)}
    try:
        return load_dataset(name, root, **{**given, **options})
    except TypeError as exc:
        if not options or "keyword argument" not in str(exc):
            raise
        known = ", ".join(describe_loader(name)["options"]) or "none"
        raise DatasetError(f"dataset entry {spec!r}: the {name} loader does not take these options ({exc}); "
                           f"its options are {known}") from None


def split_table(ds: DatasetSplits) -> str:
    """Images / ids / cameras per split, one line each (what ``train`` logs at start)."""
    lines = [f"dataset {ds.name} at {ds.root} ({ds.protocol_label})",
             f"  {'split':8s} {'images':>8s} {'ids':>7s} {'cameras':>8s}"]
    for split in ("train", "query", "gallery"):
        records = getattr(ds, split)
        if records:
            ids = len({r.pid for r in records if r.pid >= 0})
            cams = len({r.camid for r in records if r.camid >= 0})
            lines.append(f"  {split:8s} {len(records):8d} {ids:7d} {cams:8d}")
    return "\n".join(lines + [f"  note: {note}" for note in ds.notes])


def merge_train_sets(sets: Sequence[Sequence[ImageRecord]], *,
                     relabel_cameras: bool = False) -> Tuple[List[ImageRecord], int]:
    """Concatenate training sets with disjoint ids: returns ``(records, number of classes)``.

    Set 0's pids become 0..n0-1 in sorted pid order, set 1's n0..n0+n1-1, and so on; records keep
    their order. ``relabel_cameras`` relabels camera ids the same way (per set, sorted; -1 stays -1),
    so two sets never share a camera id. Every record needs a pid (>= 0).
    """
    merged: List[ImageRecord] = []
    pid_offset = cam_offset = 0
    for index, records in enumerate(sets):
        unlabelled = next((r for r in records if r.pid < 0), None)
        if unlabelled is not None:
            raise DatasetError(f"training set {index}: {unlabelled.path} has no identity (pid {unlabelled.pid}); "
                               f"drop unlabelled records before merging")
        pid_map = {pid: pid_offset + i for i, pid in enumerate(sorted({r.pid for r in records}))}
        cam_map: Dict[int, int] = {}
        if relabel_cameras:
            cameras = sorted({r.camid for r in records if r.camid >= 0})
            cam_map = {c: cam_offset + i for i, c in enumerate(cameras)}
            cam_offset += len(cameras)
        merged += [replace(r, pid=pid_map[r.pid], camid=cam_map.get(r.camid, -1) if relabel_cameras else r.camid)
                   for r in records]
        pid_offset += len(pid_map)
    return merged, pid_offset


def loader_table() -> str:
    """Every registered loader with its options, protocol and layout (``datasets`` commands print it)."""
    lines = []
    for name in DATASETS.names():
        info = describe_loader(name)
        options = ", ".join(f"{k}={v!r}" for k, v in info["options"].items()) or "none"
        lines += [name, f"    layout:   {info['layout'] or '(see its docstring)'}",
                  f"    protocol: {info['protocol']}", f"    options:  {options}"]
    return "\n".join(lines)
