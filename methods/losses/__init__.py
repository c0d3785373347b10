"""Robust losses: one network, one loss of its logits (each file registers one method).

gce (generalised CE), mae, sce, nce_rce (APL), anl_ce (ANL), bootstrap, forward_t (loss
correction); their shared terms (NCE, RCE, NNCE, MAE, L1) are pure functions in terms.py.
"""
from methods.losses import anl_ce, bootstrap, forward_t, gce, mae, nce_rce, sce  # noqa: F401
