"""Parsers and checks shared by the dataset loaders and the ensemble CLI (one parser per format).

Covers the AIC/VeRi quirks: label XML that declares ``encoding="gb2312"`` (which ElementTree
refuses), UTF-8 BOMs, CRLF line ends, blank lines and track lines ending with a space.
Never imports torch.
"""
from __future__ import annotations

import codecs
import os
import re
import xml.etree.ElementTree as ET
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Pattern, Sequence, Tuple

from post_processing.fileio import IMAGE_EXTENSIONS

from . import DatasetError

# Item attributes that become pid/camid; every other attribute goes to ImageRecord.attrs.
LABEL_KEYS = ("imageName", "vehicleID", "cameraID")

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)["']""")
_CAMERA = re.compile(r"^[cC]?(\d+)$")
_INT = re.compile(r"^[-+]?\d+$")
_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$")


class Label(NamedTuple):
    """Ground truth of one image from a label XML ``<Item>``."""

    pid: int
    camid: int
    attrs: Dict[str, Any]


# ----------------------------------------------------------------------------- text files

def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DatasetError(f"missing file {path}") from None
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None


def _decode(data: bytes, path: str, declared: Optional[str] = None) -> str:
    """Text of ``data``: BOMs honoured; otherwise strict UTF-8, then the declared encoding, then GBK."""
    if data.startswith(codecs.BOM_UTF8):
        data, candidates = data[len(codecs.BOM_UTF8):], ["utf-8"]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ["utf-16"]
    else:
        # Real GB2312 text is almost never valid UTF-8, so trying UTF-8 first is safe and also
        # reads files re-saved as UTF-8 that still carry the old gb2312 declaration.
        candidates = ["utf-8"] + ([declared] if declared else []) + ["gbk", "gb18030"]
    for encoding in dict.fromkeys(candidates):
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    raise DatasetError(f"cannot decode {path} as any of {', '.join(dict.fromkeys(candidates))}")


def iter_text_lines(path: str) -> Iterator[Tuple[int, str]]:
    """``(1-based line number, stripped line)`` for each non-blank line of a text file."""
    text = _decode(_read_bytes(path), path)
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line:
            yield number, line


def read_name_list(path: str) -> List[str]:
    """Image names of a ``name_*.txt`` file, one per line, in file order (blank lines skipped)."""
    names = []
    for number, line in iter_text_lines(path):
        if len(line.split()) != 1:
            raise DatasetError(f"{path}:{number}: expected one image name per line, got {line!r}")
        names.append(line)
    return names


def parse_track_file(path: str) -> List[List[str]]:
    """Tokens of each non-blank line of a track file (``test_track.txt``: image names).

    Real track lines end with a space; the result has one list per track, in file order.
    """
    return [line.split() for _, line in iter_text_lines(path)]


# ----------------------------------------------------------------------------- label XML

def parse_label_xml(path: str) -> List[Dict[str, str]]:
    """Attributes of every ``<Item>`` of an AIC/VeRi label XML, in file order.

    Decodes the bytes itself (the files declare gb2312, a multi-byte encoding ElementTree refuses)
    and drops the declaration before parsing; also reads files without a declaration, with a BOM
    or with CRLF line ends.
    """
    data = _read_bytes(path)
    match = _XML_ENCODING.match(data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data)
    declared = match.group(1).decode("ascii") if match else None
    text = _XML_DECLARATION.sub("", _decode(data, path, declared).lstrip("\ufeff"), count=1)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise DatasetError(f"{path}: malformed XML ({e})") from None
    return [dict(item.attrib) for item in root.iter("Item")]


def parse_attr(value: str) -> Any:
    """An XML attribute value as int or float when it is written as one, else the string."""
    text = value.strip()
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return value


def parse_camera(value: str) -> int:
    """``"c026"`` (or ``"26"``) → 26; raises ``ValueError`` for anything else."""
    match = _CAMERA.match(value.strip())
    if not match:
        raise ValueError(f"expected a camera id like 'c026', got {value!r}")
    return int(match.group(1))


def read_labels(loader: str, path: str) -> Dict[str, Label]:
    """``imageName → Label`` from a label XML; every Item must carry imageName, vehicleID, cameraID."""
    labels: Dict[str, Label] = {}
    for index, item in enumerate(parse_label_xml(path), 1):
        missing = [key for key in LABEL_KEYS if key not in item]
        if missing:
            raise DatasetError(f"{loader} loader: {path}: <Item> #{index} lacks {', '.join(missing)}: {item}")
        name = item["imageName"].strip()
        if name in labels:
            raise DatasetError(f"{loader} loader: {path}: image {name} is labelled twice")
        try:
            pid = int(item["vehicleID"])
            camid = parse_camera(item["cameraID"])
        except ValueError as e:
            raise DatasetError(f"{loader} loader: {path}: <Item> for {name}: {e}") from None
        attrs = {key: parse_attr(value) for key, value in item.items() if key not in LABEL_KEYS}
        labels[name] = Label(pid, camid, attrs)
    if not labels:
        raise DatasetError(f"{loader} loader: {path} has no <Item> elements")
    return labels


# ----------------------------------------------------------------------------- folders and names

def require_root(loader: str, root: str) -> str:
    """``root`` as a string, or an error when it is not a folder."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise DatasetError(f"{loader} loader: dataset root {root} does not exist or is not a folder")
    return root


def require_dir(loader: str, root: str, rel: str, what: str) -> str:
    """Path of folder ``root/rel``; raises naming the folder and the loader when it is missing."""
    path = os.path.join(root, rel)
    if not os.path.isdir(path):
        raise DatasetError(f"{loader} loader: missing {path} (expected {rel}/ with {what})")
    return path


def require_file(loader: str, root: str, rel: str, what: str) -> str:
    """Path of file ``root/rel``; raises naming the file and the loader when it is missing."""
    path = os.path.join(root, rel)
    if not os.path.isfile(path):
        raise DatasetError(f"{loader} loader: missing {path} (expected {rel}: {what})")
    return path


def list_images(folder: str) -> List[str]:
    """Sorted image file names in ``folder`` (other files such as ``Thumbs.db`` are ignored)."""
    return sorted(name for name in os.listdir(folder) if name.lower().endswith(IMAGE_EXTENSIONS))


def check_listed(loader: str, base: str, rel_paths: Iterable[str], source: str) -> None:
    """Raise naming the images listed in ``source`` that are not under ``base``.

    Lists each referenced folder once instead of stat-ing every file, so 100k-image sets stay fast.
    """
    listings: Dict[str, frozenset] = {}
    missing = []
    for rel in rel_paths:
        folder, name = os.path.split(rel)
        if folder not in listings:
            path = os.path.join(base, folder)
            listings[folder] = frozenset(os.listdir(path)) if os.path.isdir(path) else frozenset()
        if name not in listings[folder]:
            missing.append(rel)
    if missing:
        shown = ", ".join(missing[:5]) + (f" ... ({len(missing)} in all)" if len(missing) > 5 else "")
        raise DatasetError(f"{loader} loader: images listed in {source} are missing from {base}: {shown}")


def require_choice(loader: str, key: str, value: Any, allowed: Sequence[Any]) -> Any:
    """``value`` as the type of ``allowed`` (so ``"800"`` is read as 800) when it is one of them."""
    try:
        converted = type(allowed[0])(value)
    except (TypeError, ValueError):
        converted = None
    if converted not in allowed:
        raise DatasetError(f"{loader} loader: {key} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    return converted


def require_records(loader: str, records: List[Any], what: str) -> List[Any]:
    """``records`` unless empty: an empty split means a wrong root or a broken list."""
    if not records:
        raise DatasetError(f"{loader} loader: no images in {what}")
    return records


def match_name(loader: str, pattern: Pattern[str], name: str, folder: str, example: str) -> "re.Match[str]":
    """Match an image file name against its format's naming scheme, or raise naming the file."""
    match = pattern.match(name)
    if not match:
        raise DatasetError(f"{loader} loader: cannot parse {os.path.join(folder, name)}: "
                           f"expected a name like {example}")
    return match


def with_extension(name: str, extension: str = ".jpg") -> str:
    """``name`` with ``extension`` appended unless it already ends with an image extension."""
    return name if name.lower().endswith(IMAGE_EXTENSIONS) else name + extension
