"""Configuration: yacs defaults plus file and ``KEY VALUE`` overrides with helpful errors."""
from .defaults import get_cfg  # noqa: F401
