"""Post-processing of ReID features: numpy + numba only (never torch), one module per step."""
