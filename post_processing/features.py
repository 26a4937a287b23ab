"""Feature files: load/save/validate/align per-image feature vectors of one or more models.

Formats (see DESIGN.md): a pickle ``dict`` image name → 1-D float32 vector (the AIC 2020
convention, also Python-2 pickles), an ``.npz`` with ``names`` + ``feats``, and the CTL/SNU
export ``embeddings.npy`` + ``paths.npy``. Pickles are read with :func:`restricted_load`, which
only builds plain containers, strings, numbers and numpy arrays, so a feature file from a
team-mate or the internet cannot run code when it is loaded.

Metadata (what ``extract`` wrote the file from: the model's fingerprint, the images it skipped)
follows the feature dict as a second pickle in the same file, so a plain ``pickle.load`` still
returns just the dict; an ``.npz`` holds it as the ``fingerprint`` and ``meta`` (JSON) arrays.
Files without it (older ones, other tools') load with an empty ``meta``.
"""
from __future__ import annotations

import _codecs
import builtins
import collections
import glob
import io
import json
import os
import pickle
from dataclasses import dataclass, field
from typing import IO, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from post_processing.fileio import atomic_write, write_together
from .errors import ReidError

try:
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _multiarray

SPLITS = ("query", "gallery", "train", "val_query", "val_gallery")  # train: metric learning; val_*: tuning
SUFFIXES = (".pkl", ".npz")
META_MARKER = "reid_ensemble_features"  # key of the metadata pickle; its value is the format version
META_VERSION = 1


class FeatureFileError(ReidError, ValueError):
    """A feature file is unreadable, unsafe, malformed, or does not match the other models."""


@dataclass
class FeatureSet:
    """Features of one model on one split: ``feats[i]`` belongs to image ``names[i]``."""

    names: list
    feats: np.ndarray
    path: str = ""
    # What extract recorded: ``fingerprint`` (checkpoint + config), ``checkpoint``, ``skipped`` names.
    meta: Dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def fingerprint(self) -> Optional[str]:
        """The model fingerprint written by ``extract``; None for files without metadata."""
        return self.meta.get("fingerprint")  # type: ignore[return-value]

    @property
    def skipped(self) -> List[str]:
        """Images of the split left out at extraction as unreadable (``DATASETS.SKIP_BAD``)."""
        return list(self.meta.get("skipped", []))  # type: ignore[call-overload]


# Python 3 writes ``bytes`` at protocol < 3 as ``_codecs.encode(text, "latin1")``; nothing else in a
# feature pickle needs ``_codecs.encode``, so it is allowed with the latin-1 spellings only.
_LATIN1 = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"})


def _encode_latin1(text, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` restricted to what a pickled ``bytes`` object uses: str → latin-1."""
    if not isinstance(text, str) or not isinstance(encoding, str) or encoding.lower() not in _LATIN1 \
            or errors != "strict":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}: feature pickles "
                                     "only encode byte strings as latin-1")
    return _codecs.encode(text, "latin1")


def _refuse(what: str):
    raise pickle.UnpicklingError(f"malformed numpy data in the pickle: {what}")


def _raw_bytes(data, what: str) -> bytes:
    """An array buffer as pickled: bytes, or a Python-2 ``str`` decoded as latin-1."""
    if isinstance(data, str):
        return data.encode("latin1")
    if not isinstance(data, bytes):
        _refuse(f"{what} buffer is a {type(data).__name__}")
    return data


class _DTypeSpec:
    """A pickled ``numpy.dtype(spec, align, copy)`` and its state, turned into a real dtype by
    :meth:`dtype` after checks: numpy's own ``dtype.__setstate__`` crashes the interpreter on a
    malformed state, so it is never called."""

    _KINDS = "biufcUSO"  # plain numbers, strings, objects: no records, sub-arrays or metadata

    def __init__(self, spec, align=False, copy=False):
        self.spec = spec.decode("latin1") if isinstance(spec, bytes) else spec
        self.state = None

    def __setstate__(self, state):
        self.state = state

    def dtype(self) -> np.dtype:
        if not isinstance(self.spec, str) or not self.spec.isalnum():
            _refuse(f"dtype {self.spec!r}")
        try:
            d = np.dtype(self.spec)
        except TypeError:
            _refuse(f"dtype {self.spec!r}")
        st = self.state
        if d.kind not in self._KINDS or d.fields is not None or d.subdtype is not None:
            _refuse(f"dtype {self.spec!r}")
        if st is not None:
            if not (isinstance(st, tuple) and len(st) in (8, 9) and st[0] in (3, 4) and st[1] in ("<", ">", "|", "=")
                    and st[2:5] == (None, None, None) and (len(st) == 8 or st[8] is None)
                    and all(type(x) is int for x in st[5:8]) and st[5] in (-1, d.itemsize)):
                _refuse(f"state {st!r} of dtype {self.spec!r}")
            if st[1] in "<>" and d.kind != "O":
                d = d.newbyteorder(st[1])
        return d


class _SafeArray(np.ndarray):
    """What :func:`_reconstruct` builds: an array whose pickled state is checked (shape, dtype,
    buffer size) before numpy's ``__setstate__`` sees it."""

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 4:
            state = (1, *state)
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            _refuse("array state")
        _, shape, spec, fortran, data = state
        if not (isinstance(shape, tuple) and len(shape) <= 32 and all(type(n) is int and n >= 0 for n in shape)):
            _refuse(f"array shape {shape!r}")
        if not isinstance(spec, _DTypeSpec) or not isinstance(fortran, bool):
            _refuse("array dtype")
        dtype, count = spec.dtype(), 1
        for n in shape:
            count *= n
        if dtype.hasobject:
            if not isinstance(data, list) or len(data) != count:
                _refuse(f"object array of shape {shape} needs a list of {count} items")
        else:
            data = _raw_bytes(data, "array")
            if len(data) != count * dtype.itemsize:
                _refuse(f"array of shape {shape} and dtype {dtype.str} needs {count * dtype.itemsize} bytes, "
                        f"got {len(data)}")
        super().__setstate__((1, shape, dtype, fortran, data))


def _reconstruct(subtype, shape, typecode):
    """``numpy.core.multiarray._reconstruct`` for plain arrays only; the state comes with BUILD."""
    if subtype is not np.ndarray:
        _refuse(f"_reconstruct of {subtype!r}")
    return np.ndarray.__new__(_SafeArray, (0,), np.int8)


def _scalar(spec, data=None):
    """``numpy.core.multiarray.scalar`` for numbers and strings only, with a buffer of the right size."""
    if not isinstance(spec, _DTypeSpec):
        _refuse("scalar dtype")
    dtype = spec.dtype()
    data = _raw_bytes(data, "scalar")
    if dtype.hasobject or len(data) != dtype.itemsize:
        _refuse(f"scalar of dtype {dtype.str} with {len(data)} bytes")
    return _multiarray.scalar(dtype, data)


# Everything a feature pickle legitimately needs, keyed by (module, name) as written in the
# stream; Python-2 module names are listed too because find_class sees them unmapped. numpy's
# arrays, dtypes and scalars are rebuilt through the checked stand-ins above.
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
_ALLOWED = {
    **{(m, "_reconstruct"): _reconstruct for m in _NUMPY_MODULES},
    **{(m, "scalar"): _scalar for m in _NUMPY_MODULES},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _DTypeSpec,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _encode_latin1,
    **{(m, n): getattr(builtins, n) for m in ("builtins", "__builtin__")
       for n in ("dict", "list", "tuple", "set", "frozenset", "complex")},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}': feature pickles may only contain "
                "dicts, lists, tuples, strings, bytes, numbers and numpy arrays") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing persistent id in a feature pickle")


def restricted_load(fileobj: IO[bytes]):
    """``pickle.load`` that refuses every global outside a small allow-list (no code can run).

    Python-2 pickles load too: their ``str`` objects are decoded as latin-1, which is what numpy
    needs to rebuild array buffers.
    """
    return _RestrictedUnpickler(fileobj, encoding="latin1").load()


def _name(key, path: str, row: int) -> str:
    if isinstance(key, bytes):
        key = key.decode("utf-8", errors="strict")
    if not isinstance(key, str):
        raise FeatureFileError(f"{path}: row {row}: key {key!r} is a {type(key).__name__}, "
                               "expected an image name string")
    return key


def _stack(names: list, vectors: list, path: str) -> np.ndarray:
    rows = []
    dim = None
    for i, v in enumerate(vectors):
        try:
            arr = np.asarray(v, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as e:
            raise FeatureFileError(f"{path}: row {i} ({names[i]}): value is not a numeric vector ({e})") from None
        if dim is None:
            dim = arr.size
        elif arr.size != dim:
            raise FeatureFileError(
                f"{path}: row {i} ({names[i]}) has dimension {arr.size}, expected {dim} (the dimension of row 0)")
        rows.append(arr)
    return np.stack(rows) if rows else np.zeros((0, 0), np.float32)


def _check_meta(meta, path: str) -> Dict[str, object]:
    """The metadata record without its marker; refuses one of the wrong shape."""
    if not isinstance(meta, dict) or meta.get(META_MARKER) != META_VERSION:
        raise FeatureFileError(f"{path}: data after the feature dict is not a version-{META_VERSION} "
                               f"metadata record ({META_MARKER!r} key)")
    meta = {k: v for k, v in meta.items() if k != META_MARKER}
    if not isinstance(meta.get("fingerprint", ""), str):
        raise FeatureFileError(f"{path}: metadata 'fingerprint' must be a string")
    skipped = meta.get("skipped", [])
    if not isinstance(skipped, list) or not all(isinstance(n, str) for n in skipped):
        raise FeatureFileError(f"{path}: metadata 'skipped' must be a list of image names")
    return meta


def _check_vector(value, path: str, row: int, name: str) -> None:
    """Refuse a reconstructed array that cannot be a feature vector (wrong dtype, more than 2 dims)."""
    if isinstance(value, (np.ndarray, np.generic)):
        dtype = value.dtype
        if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None or value.ndim > 2:
            raise FeatureFileError(f"{path}: row {row} ({name}): value is a {value.ndim}-D array of dtype "
                                   f"{dtype.str!r}, expected a vector of numbers")


def _parse_pickle(path: str) -> FeatureSet:
    meta = {}
    with open(path, "rb") as f:
        obj = restricted_load(f)
        if f.read(1):
            f.seek(-1, os.SEEK_CUR)
            meta = _check_meta(restricted_load(f), path)
            if f.read(1):
                raise FeatureFileError(f"{path}: unexpected data after the metadata record")
    if not isinstance(obj, dict):
        raise FeatureFileError(f"{path}: expected a dict mapping image name to feature vector, "
                               f"got {type(obj).__name__}")
    names = [_name(k, path, i) for i, k in enumerate(obj)]
    values = list(obj.values())
    for i, v in enumerate(values):
        _check_vector(v, path, i, names[i])
    return FeatureSet(names, _stack(names, values, path), path, meta)


# Errors a truncated or malformed pickle raises in the unpickler; their message is enough.
_PICKLE_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError)


def _from_pickle(path: str) -> FeatureSet:
    """:func:`_parse_pickle`; any failure of a corrupt or crafted file (including numpy's
    ``SystemError``/``OverflowError`` and a ``MemoryError`` from a forged length) is a
    :class:`FeatureFileError` naming the file."""
    try:
        return _parse_pickle(path)
    except FeatureFileError:
        raise
    except OSError as e:
        raise FeatureFileError(f"{path}: cannot read feature pickle: {e.strerror or e}") from None
    except _PICKLE_ERRORS as e:
        raise FeatureFileError(f"{path}: cannot load feature pickle: {e}") from None
    except Exception as e:  # noqa: BLE001 - whatever a crafted stream makes the unpickler or numpy raise
        raise FeatureFileError(f"{path}: cannot load feature pickle (corrupt or not a feature file): "
                               f"{type(e).__name__}: {e}") from None


def _read_npy(path: str) -> np.ndarray:
    """``np.load`` for one .npy, reading object arrays through :func:`restricted_load`."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)
            return np.asarray(restricted_load(f))
    except (pickle.UnpicklingError, EOFError, ValueError, OSError) as e:
        raise FeatureFileError(f"{path}: cannot load .npy: {e}") from None
    except Exception as e:  # noqa: BLE001 - a crafted object array, as in _from_pickle
        raise FeatureFileError(f"{path}: cannot load .npy (corrupt): {type(e).__name__}: {e}") from None


def _from_npz(path: str) -> FeatureSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("names", "feats") if k in z.files}
            stored = {k: str(z[k].item()) for k in ("fingerprint", "meta") if k in z.files and z[k].shape == ()}
            found = z.files
    except (ValueError, OSError, EOFError) as e:
        raise FeatureFileError(f"{path}: cannot load .npz: {e}") from None
    meta: Dict[str, object] = {}
    if "meta" in stored:
        try:
            meta = _check_meta(json.loads(stored["meta"]), path)
        except json.JSONDecodeError as e:
            raise FeatureFileError(f"{path}: the 'meta' array is not JSON ({e})") from None
    if "fingerprint" in stored:
        meta["fingerprint"] = stored["fingerprint"]
    if len(arrays) != 2:
        raise FeatureFileError(f"{path}: an .npz feature file needs arrays 'names' and 'feats', found {found}")
    names, feats = arrays["names"], arrays["feats"]
    if feats.ndim != 2 or names.ndim != 1 or len(names) != len(feats):
        raise FeatureFileError(f"{path}: expected names (N,) and feats (N, D), got {names.shape} and {feats.shape}")
    names = [_name(n.item() if isinstance(n, np.generic) else n, path, i) for i, n in enumerate(names)]
    return FeatureSet(names, np.ascontiguousarray(feats, dtype=np.float32), path, meta)


def validate_features(fs: FeatureSet) -> FeatureSet:
    """Refuse duplicate names, NaN/inf and zero-norm vectors, naming the file and the first bad row."""
    where = fs.path or "<features>"
    if len(fs.names) == 0:
        raise FeatureFileError(f"{where}: contains no features")
    if len(set(fs.names)) != len(fs.names):
        seen = set()
        for i, n in enumerate(fs.names):
            if n in seen:
                raise FeatureFileError(f"{where}: row {i}: duplicate image name {n!r}")
            seen.add(n)
    bad = ~np.isfinite(fs.feats).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise FeatureFileError(f"{where}: row {i} ({fs.names[i]}) contains NaN or inf")
    zero = ~fs.feats.any(axis=1)
    if zero.any():
        i = int(np.flatnonzero(zero)[0])
        raise FeatureFileError(f"{where}: row {i} ({fs.names[i]}) is an all-zero (zero-norm) vector")
    norm = np.linalg.norm(fs.feats, axis=1)  # as l2_normalize computes it
    tiny = ~((norm > 0) & np.isfinite(norm))
    if tiny.any():
        i = int(np.flatnonzero(tiny)[0])
        what = "underflows to 0" if norm[i] == 0 else "overflows"
        raise FeatureFileError(f"{where}: row {i} ({fs.names[i]}): its norm {what} in float32, "
                               "so the vector cannot be normalised")
    return fs


def load_features(path: str, validate: bool = True) -> FeatureSet:
    """Load a ``.pkl``/``.pickle`` or ``.npz`` feature file as float32 N×D (1×D / list / float64 values flattened)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FeatureFileError(f"{path}: no such feature file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".pkl", ".pickle"):
        fs = _from_pickle(path)
    elif suffix == ".npz":
        fs = _from_npz(path)
    else:
        raise FeatureFileError(f"{path}: unknown feature file suffix {suffix!r}; expected .pkl, .pickle or .npz")
    return validate_features(fs) if validate else fs


def load_embeddings(npy_path: str, paths_npy: str, validate: bool = True) -> FeatureSet:
    """CTL/SNU export: ``embeddings.npy`` (N×D) + ``paths.npy`` (N image paths); names are the basenames."""
    feats = _read_npy(os.fspath(npy_path))
    paths = _read_npy(os.fspath(paths_npy)).reshape(-1)
    if feats.ndim != 2 or len(paths) != len(feats):
        raise FeatureFileError(f"{npy_path}: expected N×D embeddings matching {len(paths)} paths in {paths_npy}, "
                               f"got shape {feats.shape}")
    names = [os.path.basename(_name(p.item() if isinstance(p, np.generic) else p, paths_npy, i))
             for i, p in enumerate(paths)]
    fs = FeatureSet(names, np.ascontiguousarray(feats, dtype=np.float32), os.fspath(npy_path))
    return validate_features(fs) if validate else fs


def _encode(path: str, names: Sequence[str], feats, meta: Optional[Mapping[str, object]]) -> bytes:
    """The bytes of a feature file (format by suffix); ``meta`` as described in the module doc."""
    feats = np.asarray(feats, dtype=np.float32)
    names = [str(n) for n in names]
    if feats.ndim != 2 or len(names) != len(feats):
        raise FeatureFileError(f"{path}: need N names and N×D features, "
                               f"got {len(names)} names and shape {feats.shape}")
    if len(set(names)) != len(names):
        raise FeatureFileError(f"{path}: duplicate image names; each image must appear once")
    record = {META_MARKER: META_VERSION, **meta} if meta else None
    buf = io.BytesIO()
    suffix = os.path.splitext(path)[1].lower()
    if suffix in (".pkl", ".pickle"):
        pickle.dump({n: np.array(v) for n, v in zip(names, feats)}, buf, protocol=4)
        if record is not None:
            pickle.dump(record, buf, protocol=4)
    elif suffix == ".npz":
        extra = {}
        if record is not None:
            extra["meta"] = np.array(json.dumps(record, sort_keys=True))
            if meta.get("fingerprint"):
                extra["fingerprint"] = np.array(str(meta["fingerprint"]))
        np.savez(buf, names=np.array(names, dtype=str), feats=feats, **extra)
    else:
        raise FeatureFileError(f"{path}: unknown feature file suffix {suffix!r}; expected .pkl or .npz")
    return buf.getvalue()


def save_features(path: str, names: Sequence[str], feats, meta: Optional[Mapping[str, object]] = None) -> None:
    """Write ``names``/``feats`` (and ``meta``) atomically; the format follows the suffix (``.pkl``
    protocol 4, or ``.npz``)."""
    path = os.fspath(path)
    data = _encode(path, names, feats, meta)
    with atomic_write(path, "wb") as f:
        f.write(data)


def save_feature_files(files: Sequence[Tuple[str, Sequence[str], object, Optional[Mapping[str, object]]]]) -> None:
    """Write several feature files ``(path, names, feats, meta)`` so that they replace the old ones
    together (:func:`post_processing.fileio.write_together`): an error before the renames leaves every
    old file untouched and no temporary file behind; only a crash between two renames can mix old and
    new files, and the fingerprints in the metadata let :func:`check_same_model` catch that."""
    with write_together():
        for path, names, feats, meta in files:
            save_features(path, names, feats, meta)


EMBEDDINGS, PATHS = "embeddings.npy", "paths.npy"


def save_embeddings(out_dir: str, paths: Sequence[str], feats) -> Tuple[str, str]:
    """The CTL/SNU export: ``out_dir/embeddings.npy`` (N×D float32) and ``out_dir/paths.npy`` (N strings:
    image paths, or identity names for centroids), replaced together. :func:`load_embeddings` reads
    them back. Returns the two paths."""
    feats = np.asarray(feats, dtype=np.float32)
    paths = [str(p) for p in paths]
    if feats.ndim != 2 or len(paths) != len(feats):
        raise FeatureFileError(f"{out_dir}: need N paths and N×D embeddings, got {len(paths)} and shape {feats.shape}")
    files = os.path.join(out_dir, EMBEDDINGS), os.path.join(out_dir, PATHS)
    with write_together():
        for path, array in zip(files, (feats, np.array(paths, dtype=str))):
            buf = io.BytesIO()
            np.save(buf, array, allow_pickle=False)
            with atomic_write(path, "wb") as f:
                f.write(buf.getvalue())
    return files


def centroid_embeddings(feats, ids: Sequence, normalize: bool = True) -> Tuple[List[str], np.ndarray]:
    """One row per identity (the mean of its rows, L2-normalised when ``normalize``) and the identity
    names (``str(id)``), in order of first appearance."""
    feats = np.asarray(feats, dtype=np.float64)
    keys = [str(i) for i in ids]
    if feats.ndim != 2 or len(keys) != len(feats):
        raise FeatureFileError(f"need one identity per embedding, got {len(keys)} for shape {feats.shape}")
    names = list(dict.fromkeys(keys))
    index = {name: i for i, name in enumerate(names)}
    rows = np.array([index[k] for k in keys], dtype=np.int64)
    sums = np.zeros((len(names), feats.shape[1]))
    np.add.at(sums, rows, feats)
    out = (sums / np.bincount(rows, minlength=len(names))[:, None]).astype(np.float32)
    return names, (l2_normalize(out) if normalize else out)


def save_embedding_sets(sets: Sequence[Tuple[str, Sequence[str], Sequence[int], object]], centroids: bool = False,
                        normalize: bool = True) -> List[Tuple[str, int, int]]:
    """``extract --format embeddings``: for each ``(out_dir, paths, ids, feats)`` write the CTL/SNU
    files (:func:`save_embeddings`), with ``centroids`` one row per identity named by its id
    (:func:`centroid_embeddings`; every id must be known, >= 0), all replaced together. Returns
    ``(out_dir, rows, dim)`` per set."""
    written = []
    with write_together():
        for out_dir, paths, ids, feats in sets:
            rows = [str(p) for p in paths]
            if centroids:
                unknown = [p for p, i in zip(paths, ids) if int(i) < 0]
                if unknown:
                    raise FeatureFileError(f"{out_dir}: --centroids needs the identity of every image, but "
                                           f"{len(unknown)} have none (e.g. {unknown[0]})")
                rows, feats = centroid_embeddings(feats, [int(i) for i in ids], normalize)
            save_embeddings(out_dir, rows, feats)
            written.append((out_dir, len(rows), int(np.asarray(feats).shape[1])))
    return written


def check_same_model(model: str, sets: Mapping[str, FeatureSet]) -> List[str]:
    """Refuse feature files of one model (split → set) written from different checkpoints or
    configs, naming the files; returns one warning naming the files without a fingerprint (older
    files, other tools'), which cannot be checked."""
    prints = {split: fs for split, fs in sets.items() if fs.fingerprint}
    if len({fs.fingerprint for fs in prints.values()}) > 1:
        detail = "; ".join(f"{fs.path or split}: {fs.fingerprint} (checkpoint {fs.meta.get('checkpoint', '?')})"
                           for split, fs in prints.items())
        raise FeatureFileError(f"model {model!r}: its feature files were extracted from different checkpoints or "
                               f"configs (fingerprints differ: {detail}); extract them again together "
                               f"(python -m global_model extract --split all|both)")
    unchecked = [fs.path or split for split, fs in sets.items() if not fs.fingerprint]
    if not unchecked:
        return []
    return [f"model {model!r}: {', '.join(unchecked)} {'has' if len(unchecked) == 1 else 'have'} no fingerprint "
            f"(written before extract recorded one): cannot check that the model's feature files come from "
            f"one checkpoint"]


def find_feature_file(features_dir: str, model: str, split: str) -> str:
    """Path of ``<split>_<model>.pkl`` (else ``.npz``) in ``features_dir``; the error lists the models present."""
    if split not in SPLITS:
        raise FeatureFileError(f"split must be one of {SPLITS}, got {split!r}")
    for suffix in SUFFIXES:
        p = os.path.join(features_dir, f"{split}_{model}{suffix}")
        if os.path.isfile(p):
            return p
    present = sorted({os.path.splitext(os.path.basename(p))[0][len(split) + 1:]
                      for s in SUFFIXES for p in glob.glob(os.path.join(glob.escape(features_dir), f"{split}_*{s}"))})
    raise FeatureFileError(f"{features_dir}: no {split}_{model}.pkl or .npz; {split} features exist for models: "
                           f"{', '.join(present) if present else '(none)'}")


def align(sets: dict, order: Sequence[str] | None = None, show: int = 5, source: str = ""):
    """Reorder several models' features to one name order (``order``, else the first model's).

    Returns ``(names, {model: feats})``. Any model missing a name, or holding names outside the
    order, raises :class:`FeatureFileError` listing the first ``show`` such names per model.
    ``source`` names where ``order`` came from (e.g. ``name_query.txt``) in errors.
    """
    if not sets:
        raise FeatureFileError("align: no feature sets given")
    names = list(order) if order is not None else list(next(iter(sets.values())).names)
    if len(set(names)) != len(names):
        seen, dup = set(), None
        for n in names:
            if n in seen:
                dup = n
                break
            seen.add(n)
        what = f"the name order ({source})" if source else "the name order"
        raise FeatureFileError(f"align: {what} lists {dup!r} more than once; each image must appear once")
    wanted = set(names)
    problems, out = [], {}
    for model, fs in sets.items():
        index = {n: i for i, n in enumerate(fs.names)}
        missing = [n for n in names if n not in index]
        extra = [n for n in fs.names if n not in wanted]
        if missing or extra:
            msg = f"model {model!r} ({fs.path or 'in memory'}):"
            if missing:
                msg += f" {len(missing)} missing name(s), first: {', '.join(missing[:show])};"
            if extra:
                msg += f" {len(extra)} extra name(s), first: {', '.join(extra[:show])};"
            problems.append(msg.rstrip(";"))
            continue
        rows = np.fromiter((index[n] for n in names), dtype=np.int64, count=len(names))
        out[model] = fs.feats if np.array_equal(rows, np.arange(len(names))) else fs.feats[rows]
    if problems:
        raise FeatureFileError("feature files do not cover the same images:\n  " + "\n  ".join(problems))
    return names, out


def l2_normalize(x, axis: int = -1) -> np.ndarray:
    """Unit-length float32 vectors along ``axis``; a zero vector is an error (it has no direction)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    if (norm == 0).any():
        row = int(np.flatnonzero((norm == 0).reshape(-1))[0])
        raise ValueError(f"l2_normalize: row {row} has zero norm")
    return x / norm
