"""The exceptions of the noise package, in a module of their own: spec.py, maps.py and
artifact.py all raise them, and none of those should import another just for its error type."""
from __future__ import annotations


class NoiseSpecError(ValueError):
    """A noise spec (or a noise artifact) that cannot be used; the message says why."""


class NoiseArtifactError(NoiseSpecError):
    """A saved noise artifact that is corrupted or does not match what the caller expects."""
