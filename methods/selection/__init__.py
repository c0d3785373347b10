"""Selection and semi-supervised methods: each file registers one.

Small-loss selection with two networks (coteaching, coteaching_plus, jocor), division into clean
and noisy sets with semi-supervised training (dividemix, disc, sed, elr_plus), Confident
Learning (cl: cleanlab's label issues from cross-validated probabilities); their shared
pieces: mixup.py (mixing, ramps, soft targets), division.py (the loss mixture), ema.py
(weight-averaged copies).
"""
from methods.selection import (coteaching, coteaching_plus, confident_learning, disc, dividemix,  # noqa: F401
                               elr_plus, jocor, sed)
