"""Regularisers of one network's training: elr (per-sample target averages), sop (per-sample
over-parameterisation) and cdr (gradient of the critical weights only). Each file registers one
method."""
from methods.regularisers import cdr, elr, sop  # noqa: F401
