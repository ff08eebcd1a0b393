"""Typed requests: frozen dataclasses whose field defaults are the YAML defaults.

A request (`engine.request.LandscapeRequest`, `analysis.request.AnalyzeRequest`, each analysis's
options) is declared with `@section`: a frozen dataclass that

* refuses an unknown keyword with a `TypeError` naming the nearest valid one (difflib), as
  Python does for a misspelt argument — ``gird=`` -> "... did you mean 'grid'?";
* takes a plain mapping for a nested section (``grid={"x": {...}}``) and merges it onto that
  field's default (as a YAML override would), checking the nested keys the same way
  (``grid={"x": {"mn": 0}}`` -> "... 'grid.x.mn'; did you mean 'grid.x.min'?");
* is read like the mapping it replaces (``req.get("device")``, ``req["grid"]``, ``"k" in req``)
  and written back as one (`Section.to_dict`: tuples as lists, paths as strings).

Validation lives in each request's ``__post_init__`` (a `BadInput` naming the key). `Section.
from_mapping` builds a request from a plain mapping (a composed config's container) with the
same checks.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bertviz_landscape.contracts.errors import BadInput


class UnknownKeyword(TypeError):
    """A keyword no request field has: names the nearest valid one (its dotted path inside the
    request), or lists the valid ones."""

    def __init__(self, where: str, path: tuple[str, ...], key: str, valid: Iterable[str]):
        self.where, self.path, self.key, self.valid = where, tuple(path), key, sorted(valid)
        super().__init__(self._message())

    def _message(self) -> str:
        prefix = "".join(f"{p}." for p in self.path)
        close = difflib.get_close_matches(self.key, self.valid, n=1)
        hint = (
            f"; did you mean {prefix + close[0]!r}?"
            if close
            else f"; valid: {', '.join(prefix + v for v in self.valid)}"
        )
        return f"{self.where}() got an unexpected keyword argument {prefix + self.key!r}{hint}"

    def within(self, where: str | None = None, path: tuple[str, ...] = ()) -> UnknownKeyword:
        """The same error seen from an outer call (`where`) or section (`path` prefixed)."""
        return UnknownKeyword(where or self.where, (*path, *self.path), self.key, self.valid)


class BadValue(BadInput):
    """A value of the wrong kind for its key (`path`: the key's dotted place in the request)."""

    def __init__(self, path: tuple[str, ...], what: str):
        self.path, self.what = tuple(path), what
        super().__init__(f"{'.'.join(self.path)} {what}")

    def within(self, path: tuple[str, ...]) -> BadValue:
        return BadValue((*path, *self.path), self.what)


def check_keywords(where: str, given: Iterable[str], valid: Iterable[str]) -> None:
    """Raise `UnknownKeyword` for the first of `given` that is not in `valid`."""
    valid = set(valid)
    for key in given:
        if key not in valid:
            raise UnknownKeyword(where, (), str(key), valid)


def _plain(value: Any) -> Any:
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return str(value)
    return value


def deep_merge(old: Mapping, new: Mapping) -> dict:
    out = dict(old)
    for key, value in new.items():
        prior = out.get(key)
        out[key] = (
            deep_merge(prior, value) if isinstance(prior, Mapping) and isinstance(value, Mapping) else value
        )
    return out


class Section:
    """What every `@section` request has: mapping-style reads and a plain-dict copy."""

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if f.init]

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.keys() else default

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def to_dict(self) -> dict[str, Any]:
        """The request as the YAML says it: nested dicts, lists for tuples, strings for paths."""
        return {k: _plain(getattr(self, k)) for k in self.keys()}

    @classmethod
    def merged(cls, base: Any, values: Mapping[str, Any]) -> Any:
        """`values` (a plain mapping) on top of `base` (this field's default, or None)."""
        check_keywords(cls.__name__, values, [f.name for f in dataclasses.fields(cls) if f.init])
        values = {str(k): v for k, v in values.items()}
        if isinstance(base, cls):
            for key, value in values.items():
                old = getattr(base, key)
                if isinstance(old, dict) and isinstance(value, Mapping):
                    values[key] = deep_merge(old, value)
            return dataclasses.replace(base, **values)
        return cls(**values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]):
        """The request from a plain mapping (keys checked as keywords are)."""
        return cls(**{str(k): v for k, v in values.items()})


class Settings(Section):
    """A section of an analysis's options: each value given must be of its default's kind (a
    number for a number, true/false for a flag, text for text; null is always taken — the
    analysis says what it means), else a `BadValue` naming the key."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            default, value = _field_default(f), getattr(self, f.name)
            if (
                value is None
                or default is None
                or f.metadata.get("free")
                or isinstance(default, (Section, dict))
            ):
                continue
            if isinstance(default, bool):
                ok, what = isinstance(value, bool), "true or false"
            elif isinstance(default, (int, float)):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                ok = ok and (isinstance(default, float) or float(value).is_integer())
                what = "a number" if isinstance(default, float) else "an integer"
            elif isinstance(default, str):
                ok, what = isinstance(value, str), "text"
            elif isinstance(default, tuple):
                ok, what = isinstance(value, (list, tuple)), "a list"
                if ok:
                    object.__setattr__(self, f.name, tuple(value))
            else:
                continue
            if not ok:
                raise BadValue((f.name,), f"must be {what}, got {value!r}")


def free(default: Any) -> Any:
    """A field of a `Settings` section whose value may be of another kind than its default (a
    parameter selector: a name or a list of names)."""
    return dataclasses.field(default=default, metadata={"free": True})


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def section(cls=None, *, frozen: bool = True, sections: Mapping[str, type] | None = None):
    """Make `cls` a request: a (frozen) dataclass whose constructor checks its keywords and turns a
    plain mapping given for a nested section into that section, merged onto its default.

    A nested section is a field whose default is a `Section` (or one named in `sections`, for a
    field whose default is None or whose type its value decides)."""

    def wrap(cls):
        cls = dataclasses.dataclass(frozen=frozen)(cls)
        init = cls.__init__
        declared = [f for f in dataclasses.fields(cls) if f.init]
        valid = [f.name for f in declared]
        nested: dict[str, type] = dict(sections or {})
        for f in declared:
            if f.name not in nested:
                default = _field_default(f)
                if isinstance(default, Section):
                    nested[f.name] = type(default)
        by_name = {f.name: f for f in declared}

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            check_keywords(cls.__name__, kwargs, valid)
            for name, kind in nested.items():
                value = kwargs.get(name)
                if isinstance(value, Mapping):
                    try:
                        kwargs[name] = kind.merged(_field_default(by_name[name]), value)
                    except UnknownKeyword as err:
                        raise err.within(cls.__name__, (name,)) from None
                    except BadValue as err:
                        raise err.within((name,)) from None
            init(self, *args, **kwargs)

        cls.__init__ = __init__
        return cls

    return wrap if cls is None else wrap(cls)


def default_output_dir() -> str:
    """conf/paths/default.yaml's ``output_dir``: env BVL_OUTPUT_DIR, else ``outputs``."""
    return os.environ.get("BVL_OUTPUT_DIR", "outputs")


@section
class WandbOptions(Section):
    """The `wandb` section (conf/wandb/default.yaml and the commands' own keys)."""

    enabled: bool = False
    name: str | None = None
    dir: str = dataclasses.field(default_factory=default_output_dir)
    project: str = "bertviz_landscape"
    entity: str | None = None
    mode: str = dataclasses.field(default_factory=lambda: os.environ.get("WANDB_MODE", "offline"))


def as_path(value: Any) -> Path | None:
    """A path given in a request (None, '' and Hydra's '???' are no path), absolute."""
    return None if value in (None, "", "???") else Path(str(value)).expanduser().resolve()
