"""Identity memos for the engine's hot paths.

Every handshake of a run sends the same few immutable codec objects again (the transforms
of configured and chosen proposals, traffic selectors): the same objects, because configs,
proposal parsing and payload parsing are memoised. Their encodings are pure functions of
the objects, and hashing a nested frozen dataclass costs more than encoding it, so these
memos look objects up by identity. Never use one for anything derived from random values,
keys or peer data that is not itself memoised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    """`memo(obj)` = `function(obj)`, remembered for the last `size` objects by identity.
    Each entry holds its object, so an id cannot be reused while it is cached."""

    __slots__ = ("_function", "_size", "_cache")

    def __init__(self, function: Callable[[K], V], size: int = 1024) -> None:
        self._function = function
        self._size = size
        self._cache: dict[int, tuple[K, V]] = {}

    def __call__(self, obj: K) -> V:
        hit = self._cache.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = self._function(obj)
        if len(self._cache) >= self._size:
            self._cache.clear()
        self._cache[id(obj)] = (obj, value)
        return value
