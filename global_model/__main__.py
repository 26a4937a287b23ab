import os
import sys

# numba's OpenMP layer spins idle threads unless told otherwise (see post_processing's kernels);
# an entry point, not a library import, decides the process environment.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from .cli import main  # noqa: E402

sys.exit(main())
