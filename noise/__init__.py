"""Label noise: specs, transition matrices, label sampling, instance noise and artifacts.

All transition matrices are row-stochastic: T[i, j] = P(noisy = j | true = i). Every random
function takes an explicit numpy.random.Generator; nothing here touches global RNG state.
"""
from noise.artifact import NoiseArtifact, build_artifact, labels_sha256, load_artifact, save_artifact
from noise.errors import NoiseArtifactError, NoiseSpecError
from noise.idn import idn_labels
from noise.maps import ASYM_MAPS, asym_map
from noise.matrices import (asym_matrix, flip_rate, nominal_matrix, pairflip_matrix,
                            realised_matrix, sym_incl_matrix, sym_matrix)
from noise.sampling import exact_counts, sample_from_matrix
from noise.spec import KINDS, MODES, NoiseSpec, validate_spec
from noise.verify import verify_artifact

__all__ = [
    "ASYM_MAPS", "KINDS", "MODES", "NoiseArtifact", "NoiseArtifactError", "NoiseSpec",
    "NoiseSpecError", "asym_map", "asym_matrix", "build_artifact", "exact_counts", "flip_rate",
    "idn_labels", "labels_sha256", "load_artifact", "nominal_matrix", "pairflip_matrix",
    "realised_matrix", "sample_from_matrix", "save_artifact", "sym_incl_matrix", "sym_matrix",
    "validate_spec", "verify_artifact",
]
