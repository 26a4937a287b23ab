"""Post-processing of ReID features: numpy + numba only (never torch), one module per step.

Importing it changes nothing in the process environment: the entry points (``python -m
global_model``, the ``ensemble`` command, the benchmarks) set ``OMP_WAIT_POLICY=passive`` so that
numba's idle OpenMP threads sleep instead of spinning.
"""
