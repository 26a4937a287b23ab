"""Defog a folder with an SJDL checkpoint (the library behind ``python -m global_model defog``).

The encoder's stem/layer1 and the decoder stored beside it (``aux/decoder`` entry of any checkpoint
the SJDL trainer writes) run at ``INPUT.SIZE_TEST``; each result is resized back to its source
image's size and written under the same file name (``--image both``: into ``decoded/`` and
``enhanced/`` sub-folders). Images directly inside ``--src`` are processed, in name order.
"""
from __future__ import annotations

import os
from typing import Dict, List

import cv2

from post_processing.errors import ReidUsageError
from post_processing.fileio import IMAGE_EXTENSIONS

from ..data.datasets.common import list_images
from ..data.records import ImageRecord
from .restore import Restorer

__all__ = ["OUTPUTS", "defog_folder"]

OUTPUTS = ("enhanced", "decoded", "both")


def defog_folder(weights: str, src: str, out: str, output: str = "enhanced", opts=(), progress: bool = True) -> int:
    """Defog every image of ``src`` into ``out``; returns the number of images written."""
    from post_processing.fileio import atomic_write

    if output not in OUTPUTS:
        raise ReidUsageError(f"--image must be one of {', '.join(OUTPUTS)}, got {output!r}")
    if not os.path.isdir(src):
        raise ReidUsageError(f"--src {src!r} is not a directory")
    names = list_images(src)
    if not names:
        raise ReidUsageError(f"--src {src!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    restorer = Restorer(weights, opts)
    kinds = ["decoded", "enhanced"] if output == "both" else [output]
    dirs: Dict[str, str] = {k: os.path.join(out, k) if output == "both" else out for k in kinds}
    records: List[ImageRecord] = [ImageRecord(os.path.join(src, n), -1, -1) for n in names]
    written = 0
    for paths, results in restorer.batches(records, progress):
        for i, path in enumerate(paths):
            for kind in kinds:
                ext = os.path.splitext(path)[1].lower()
                ok, buf = cv2.imencode(ext, cv2.cvtColor(results[kind][i], cv2.COLOR_RGB2BGR))
                if not ok:
                    raise OSError(f"cannot encode the defogged {path} as {ext}")
                os.makedirs(dirs[kind], exist_ok=True)
                with atomic_write(os.path.join(dirs[kind], os.path.basename(path)), "wb") as f:
                    f.write(buf.tobytes())
            written += 1
    return written
