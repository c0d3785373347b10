"""Checked dataclass fields: every setting declares its type and valid range next to its docstring.

    @dataclass
    class GCEConfig:
        q: float = param(0.7, gt=0.0, le=1.0)
        \"\"\"Exponent of L_q ...\"\"\"

``check_fields(obj, prefix)`` validates (and coerces) every field of a config instance, so a bad
value is refused when the config is resolved, before anything trains, with a message that names
the setting, its valid range and the value given. The run config (benchmark/config/run.py), the noise
and optimiser sections, every method's Config and the mask settings all use it.

Coercion is strict but not pedantic: an int is accepted for a float field, an integral float
(``2.0``) for an int field, the strings true/false/1/0/yes/no for a bool field. Anything else of
the wrong type (``"abc"`` for a float, ``2.5`` for an int, ``1`` for a bool) is refused.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["ConfigError", "Check", "param", "check_fields", "field_check", "describe_fields"]


class ConfigError(KeyError, ValueError):
    """A setting that does not exist or has an invalid value. The message names it and what is valid.

    A KeyError (the resolve_hp contract of earlier versions) and a ValueError at once; str() is the
    plain message (KeyError would quote it).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Check:
    """The valid values of one setting: a type and optional bounds, choices and special values."""

    kind: type
    """float, int, bool, str or list (a list of ints or floats, see ``item``)."""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] = ()
    """When non-empty, the value must be one of these."""
    also: tuple[Any, ...] = ()
    """Special values allowed outside the bounds (e.g. -1 meaning "use the noise rate")."""
    item: type | None = None
    """For lists: the type of each element (bounds apply to every element)."""

    def describe(self) -> str:
        """The valid values in words, e.g. 'a number in (0, 1]' or 'one of: sgd, adam'."""
        if self.choices:
            return "one of: " + ", ".join(str(c) for c in self.choices)
        noun = {float: "a number", int: "an integer", bool: "true or false", str: "a string",
                list: f"a list of {'integers' if self.item is int else 'numbers'}"}[self.kind]
        lo = f"[{_num(self.ge)}" if self.ge is not None else (f"({_num(self.gt)}" if self.gt is not None else "")
        hi = f"{_num(self.le)}]" if self.le is not None else (f"{_num(self.lt)})" if self.lt is not None else "")
        if lo and hi:
            text = f"{noun} in {lo}, {hi}"
        elif lo:
            text = f"{noun} {'>=' if self.ge is not None else '>'} {_num(self.ge if self.ge is not None else self.gt)}"
        elif hi:
            text = f"{noun} {'<=' if self.le is not None else '<'} {_num(self.le if self.le is not None else self.lt)}"
        else:
            text = noun
        if self.also:
            text += " (or " + ", ".join(_num(a) for a in self.also) + ")"
        return text

    def coerce(self, value: Any) -> Any:
        """The value converted to this setting's type; raises ValueError (without a name) if invalid."""
        if self.kind is list:
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"must be {self.describe()}, got {value!r}")
            return [self._scalar(v, self.item or float) for v in value]
        return self._scalar(value, self.kind)

    def _scalar(self, value: Any, kind: type) -> Any:
        if kind is bool:
            if isinstance(value, bool):
                v = value
            elif isinstance(value, str) and value.strip().lower() in _BOOLS:
                v = _BOOLS[value.strip().lower()]
            else:
                raise ValueError(f"must be true or false, got {value!r}")
        elif kind is int:
            if isinstance(value, str):
                try:
                    value = int(value.strip())
                except ValueError:
                    raise ValueError(f"must be an integer, got {value!r}") from None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"must be an integer, got {value!r}")
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"must be an integer, got {value!r}")
            v = int(value)
        elif kind is float:
            if isinstance(value, str):
                try:
                    value = float(value.strip())
                except ValueError:
                    raise ValueError(f"must be a number, got {value!r}") from None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"must be a number, got {value!r}")
            v = float(value)
            if not math.isfinite(v):
                raise ValueError(f"must be a finite number, got {value!r}")
        else:  # str
            if not isinstance(value, str):
                raise ValueError(f"must be a string, got {value!r}")
            v = value
        if v in self.also:
            return v
        if self.choices and v not in self.choices:
            raise ValueError(f"must be {self.describe()}, got {value!r}")
        if kind in (int, float):
            bad = ((self.ge is not None and v < self.ge) or (self.gt is not None and v <= self.gt)
                   or (self.le is not None and v > self.le) or (self.lt is not None and v >= self.lt))
            if bad:
                raise ValueError(f"must be {self.describe()}, got {value!r}")
        return v


_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def param(default: Any, *, ge: float | None = None, gt: float | None = None,
          le: float | None = None, lt: float | None = None, choices: Sequence[Any] = (),
          also: Sequence[Any] = (), item: type | None = None) -> Any:
    """A dataclass field with its valid values: ``q: float = param(0.7, gt=0, le=1)``.

    The type comes from the default (a list default is copied per instance). The docstring of the
    field follows it, as for any dataclass field.
    """
    kind = type(default) if not isinstance(default, (list, tuple)) else list
    if kind is list and item is None:
        item = int if all(isinstance(v, int) for v in default) else float
    check = Check(kind, ge, gt, le, lt, tuple(choices), tuple(also), item)
    if kind is list:
        return field(default_factory=lambda d=list(default): list(d), metadata={"check": check})
    return field(default=default, metadata={"check": check})


def field_check(f: dataclasses.Field) -> Check | None:
    """The Check of a dataclass field declared with :func:`param`, else None."""
    return f.metadata.get("check")


def check_fields(obj: Any, prefix: str = "", owner: str = "") -> None:
    """Validate and coerce, in place, every :func:`param` field of dataclass ``obj``.

    Nested dataclass fields are checked recursively (their names get ``prefix``). Afterwards the
    object's own ``check()`` runs, if it has one, for rules that span several fields. Raises
    ConfigError naming ``<prefix><field>`` (and ``owner``, e.g. the method) on the first bad value.
    """
    who = f"{owner}: " if owner else ""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        chk = field_check(f)
        if chk is not None:
            try:
                coerced = chk.coerce(value)
            except ValueError as e:
                raise ConfigError(f"{who}{prefix}{f.name} {e}") from None
            if coerced is not value:
                object.__setattr__(obj, f.name, coerced)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_fields(value, f"{prefix}{f.name}.", owner)
    extra = getattr(obj, "check", None)
    if callable(extra):
        try:
            extra()
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError(f"{who}{e}") from None


def describe_fields(cls: type, prefix: str = "") -> dict[str, str]:
    """``{"<prefix>name": "a number in (0, 1]"}`` for every checked field of dataclass ``cls``."""
    out = {}
    for f in dataclasses.fields(cls):
        chk = field_check(f)
        if chk is not None:
            out[prefix + f.name] = chk.describe()
    return out
