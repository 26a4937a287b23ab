"""The one image-record type shared by every loader, the trainer, the extractor and the ensemble."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional


@dataclass(frozen=True)
class ImageRecord:
    """One image of a ReID split.

    ``pid``/``camid`` are -1 when unknown (AIC query/test without ground truth); ``trackid`` is -1
    when the dataset has no tracks. ``clear_path`` is the fog-free twin of a synthetic foggy image
    (FVRID pairs). ``attrs`` holds whatever else the format carries (colour, type, orientation ...).
    """

    path: str
    pid: int
    camid: int
    trackid: int = -1
    clear_path: Optional[str] = None
    attrs: Dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        """File name used as the key in feature files and submissions (e.g. ``000123.jpg``)."""
        return os.path.basename(self.path)
