"""Dividing the training set: the two-component Gaussian mixture over per-sample losses that
DivideMix's co-divide step fits, and the min-max scaling it is fitted on."""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor


def minmax(x: Tensor) -> Tensor:
    """(N,) -> (N,) scaled to [0, 1]; a constant vector maps to zeros (no division by zero)."""
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo).clamp_min(1e-12)


def gmm_clean_prob(losses: Tensor, seed: int, max_iter: int = 10, tol: float = 1e-2,
                   reg_covar: float = 5e-4) -> Tensor:
    """(N,) per-sample losses -> (N,) float32 P(clean): the posterior of the low-mean component
    of a two-component 1-D Gaussian mixture fitted to the losses (DivideMix's co-divide step).

    The defaults are the official settings (max_iter 10, tol 1e-2, reg_covar 5e-4); ``seed`` fixes
    scikit-learn's k-means initialisation so a resumed run refits exactly the same mixture.
    The result lives on the device of ``losses``. Non-finite losses are treated as the largest.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    x = losses.detach().double()
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        x = torch.where(finite, x, x[finite].max() if bool(finite.any()) else torch.zeros_like(x))
    arr = x.cpu().numpy().reshape(-1, 1)
    gmm = GaussianMixture(n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar,
                          random_state=seed)
    with warnings.catch_warnings():
        # 10 EM iterations often stop short of tol, on purpose (the official setting)
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(arr)
        post = gmm.predict_proba(arr)
    low = int(np.argmin(gmm.means_.reshape(-1)))
    return torch.as_tensor(post[:, low], dtype=torch.float32, device=losses.device)


