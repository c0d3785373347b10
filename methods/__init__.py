"""Training methods. Each file registers one method; importing them here fills the registry.

Layout: base.py (the contract: RunContext, StrongSpec, Method, the registry), params.py (checked
config fields), single.py (SingleNetwork and the one supervised epoch), batching.py and
per_sample.py (sample orders; per-sample losses and state), ce.py, losses/ (gce and the robust
losses), regularisers/, selection/ (coteaching, dividemix and the other selection methods), and
the OBD mask (mask.py, obd.py: X+obd for every X).
"""
from methods.base import (Method, RunContext, get_method, list_methods, register_method, resolve_hp,
                          revisions_of)
from methods import ce  # noqa: F401  (registration side effects)
from methods import losses, regularisers, selection  # noqa: F401  (robust losses; regularisers; selection)

__all__ = ["Method", "RunContext", "get_method", "list_methods", "register_method", "resolve_hp", "revisions_of"]

# X+obd for every method registered above (methods/obd.py; also registers "obd"). Keep this last.
from methods.obd import register_masked_variants  # noqa: E402

register_masked_variants()
