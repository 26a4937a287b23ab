"""``python -m mgn_model ...``: an alias of ``python -m global_model`` (the family comes from the config)."""
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from global_model.cli import main  # noqa: E402

sys.exit(main(prog="mgn_model"))
