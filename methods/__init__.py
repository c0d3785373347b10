"""Training methods. Each file registers one method; importing them here fills the registry."""
from methods.base import Method, RunContext, get_method, list_methods, register_method, resolve_hp
from methods import ce, gce  # noqa: F401  (registration side effects)

__all__ = ["Method", "RunContext", "get_method", "list_methods", "register_method", "resolve_hp"]
