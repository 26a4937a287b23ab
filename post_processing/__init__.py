"""Post-processing of ReID features: numpy + numba only (never torch), one module per step."""

import os

# numba's OpenMP layer (libgomp) spins idle threads by default; on small or shared machines that
# makes every parallel kernel launch cost ~10-20 ms instead of ~10 µs. Must be set before the first
# parallel launch (libgomp reads it once); an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
