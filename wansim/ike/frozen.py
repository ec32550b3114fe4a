"""A faster `__init__` for the engine's frozen dataclasses.

The `__init__` that `dataclasses` writes for a frozen class stores every field with
`object.__setattr__`, a generic attribute lookup per field and call (it has to step
around the class's own `__setattr__`, which refuses). The engine builds about a hundred
such records per handshake (headers, payloads, events), so `fast_init` writes that
`__init__` again, storing each field straight through its slot descriptor (or through
one bound `object.__setattr__` when the class has no slots). Signature, defaults,
default factories, keyword-only fields and the `__post_init__` call stay as they were,
and so do the objects, their equality, hash and repr.

Storing through a descriptor is still a call per field. A record with several fields is
built faster as an instance of a private "builder" subclass that has no frozen
`__setattr__` (so each field is a plain attribute store) and is then given its real
class (`__class__` assignment: same layout, no extra slots). Only the record being built
is ever of that subclass, and only inside `__init__` / `_unchecked`.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

T = TypeVar("T", bound=type)


class _Factory:
    """Default of a parameter whose field has a default factory (shown as in dataclasses)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()
_BUILDER_FIELDS = 4  # fields from which __init__ builds through the builder subclass


def fast_init(cls: T) -> T:
    """Class decorator, placed above `@dataclass(frozen=True, ...)`. Also gives the class
    `_unchecked(*fields)`: the same object without the `__post_init__` checks, for
    parsers whose values are valid by construction."""
    if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):
        raise TypeError(f"{cls.__name__} is not a frozen dataclass")
    builder = type(
        f"_{cls.__name__}Builder",
        (cls,),
        {
            "__slots__": (),
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
            "__module__": cls.__module__,
        },
    )
    namespace: dict = {"_MISSING": _FACTORY, "_set": object.__setattr__, "_builder": builder}
    namespace["_type_of"] = type  # a field may be called "type"
    params, keyword_only, body, stores = ["self"], [], [], []
    for f in dataclasses.fields(cls):
        name, value, default = f.name, f.name, ""
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = f.default
            default = f"=_default_{name}"
            if not f.init:
                value = f"_default_{name}"
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = f.default_factory
            default = "=_MISSING"
            value = f"_factory_{name}() if {name} is _MISSING else {name}"
            if not f.init:
                value = f"_factory_{name}()"
        elif not f.init:
            continue  # no default: left for __post_init__, as dataclasses does
        if f.init:
            (keyword_only if f.kw_only else params).append(f"{name}{default}")
        slot = _slot(cls, name)
        if slot is not None:
            namespace[f"_set_{name}"] = slot.__set__
            body.append(f"    _set_{name}(self, {value})")
        else:
            body.append(f"    _set(self, {name!r}, {value})")
        stores.append(f"    self.{name} = {value}")
    # _unchecked(every init field, in order): the object without __post_init__'s checks,
    # for parsers whose values are valid by construction (they raise ParseError first).
    fields = [p.split("=")[0] for p in params[1:] + keyword_only]
    unchecked = ["    self = _new(_builder)", *stores, "    self.__class__ = _cls"]
    unchecked.append("    return self")
    namespace.update(_new=object.__new__, _cls=cls)
    if keyword_only:
        params += ["*", *keyword_only]
    if len(stores) >= _BUILDER_FIELDS:  # else the descriptor stores cost less
        # A subclass that inherits this __init__ keeps the descriptor stores.
        body = [
            "    if _type_of(self) is _cls:",
            "        _set(self, '__class__', _builder)",
            *("    " + line for line in stores),
            "        self.__class__ = _cls",
            "    else:",
            *("    " + line for line in body),
        ]
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = (
        f"def __init__({', '.join(params)}):\n" + "\n".join(body or ["    pass"]) + "\n"
        f"def _unchecked({', '.join(fields)}):\n" + "\n".join(unchecked) + "\n"
    )
    # A file name per class, so profiles tell the records apart (cProfile keys functions
    # by file, line and name, and every class would otherwise share "<string>":1).
    exec(compile(source, f"<fast_init {cls.__qualname__}>", "exec"), namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init
    cls._unchecked = staticmethod(namespace["_unchecked"])
    return cls


def _slot(cls: type, name: str):
    """The slot descriptor that stores field `name`, or None (it lives in `__dict__`)."""
    for klass in cls.__mro__:
        attribute = klass.__dict__.get(name)
        if attribute is not None:
            return attribute if type(attribute).__name__ == "member_descriptor" else None
    return None
