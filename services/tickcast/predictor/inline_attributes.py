"""Reading an object's attributes without giving it a ``__dict__`` it never had (issue 15, memory per symbol).

CPython 3.11 keeps a fresh object's attributes inline, in an array of values against keys its class shares.
Anything that asks for the object's ``__dict__`` (``vars()``, ``__getstate__``, so ``__reduce_ex__`` and every
pickle) makes one, and the object keeps it for good: ~64 bytes per object, +2.6 KB per busy symbol at its
owner's first snapshot. :func:`read_attributes` reads the attributes by name instead, with ``getattr``, which
leaves them inline, and proves that what it read is all of them, exactly, without asking for the dict:

- **Which names.** Per class, first the names its objects were seen holding (read before, or told to
  :func:`learn_names` after a ``__dict__`` was read); when those are not all, every name its methods' code
  uses (``self.name = ...`` among them). A name the class itself defines with a ``__get__`` (a method, a
  property) is never read: ``getattr`` would call it.
- **The proof.** ``gc.get_referents`` of such an object gives its class and the value of each attribute it
  holds inline (or the ``__dict__`` alone, once there is one). If the values read by name are, object for
  object, those values, each name read holds one of them and no value is left unnamed: the names are
  complete and each value is the object's own. A value equal, by identity, to the class attribute of the same
  name cannot be told from the class's (the object may lack it) and counts as not held: if the object does
  hold it, a value is left unnamed and the proof fails.

When the proof fails (an attribute set from outside the class's methods, not yet learnt), the answer is None:
the caller reads ``__dict__`` as before, and passes its names to :func:`learn_names` for the next object.

>>> class Point:
...     def __init__(self, x: float) -> None:
...         self.x = x
>>> point = Point(1.5)
>>> read_attributes(point)
{'x': 1.5}
>>> point.label = "set from outside"
>>> read_attributes(point) is None
True
>>> learn_names(Point, ["label"])
>>> other = Point(2.5)
>>> other.label = "also from outside"
>>> read_attributes(other)
{'x': 2.5, 'label': 'also from outside'}
"""

from __future__ import annotations

import gc
import types
from collections.abc import Iterable, Iterator
from typing import Any

#: ``Py_TPFLAGS_MANAGED_DICT``: instances keep their attributes inline until a ``__dict__`` is asked for.
MANAGED_DICT = 1 << 4
_MISSING = object()


def read_attributes(obj: object) -> dict[str, Any] | None:
    """``obj``'s attributes by name, in its class's key order, without making it a ``__dict__``; None if they
    cannot be proven complete and exact (module doc), or its class looks attributes up its own way."""
    kind = type(obj)
    layout = _LAYOUTS.get(kind)
    if layout is None:
        layout = _LAYOUTS[kind] = _Layout(kind)
    if not layout.readable:
        return None
    held = gc.get_referents(obj)
    try:
        held.remove(kind)  # a heap type's instance refers to its class once, besides its attributes
    except ValueError:
        return None
    found = layout.read(obj, layout.names)
    if not _same_objects(held, found) and layout.spare:
        found.update(layout.read(obj, layout.spare))  # once in a while: a name not held by one before
        if _same_objects(held, found):
            layout.hold(found)
    if not _same_objects(held, found):
        return None
    position = {id(value): index for index, value in enumerate(held)}
    return dict(sorted(found.items(), key=lambda item: position[id(item[1])]))


def learn_names(kind: type, names: Iterable[str]) -> None:
    """Read ``names`` first on ``kind``'s next objects (names its objects were seen holding)."""
    layout = _LAYOUTS.get(kind)
    if layout is None:
        layout = _LAYOUTS[kind] = _Layout(kind)
    layout.hold(names)


def _same_objects(held: list[Any], found: dict[str, Any]) -> bool:
    return len(held) == len(found) and sorted(map(id, held)) == sorted(map(id, found.values()))


class _Layout:
    """What :func:`read_attributes` reads on one class's objects."""

    __slots__ = ("kind", "names", "on_class", "readable", "spare")

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.readable = bool(
            kind.__flags__ & MANAGED_DICT
            and getattr(kind, "__getattr__", None) is None  # it would answer for names the object lacks
            and kind.__getattribute__ is object.__getattribute__
        )
        #: Plain class attributes among the names read: an object may hold its own, or not (module doc).
        self.on_class: dict[str, Any] = {}
        #: Names held by objects read so far, in the order first met (a dict: an ordered set); read first.
        self.names: dict[str, None] = {}
        #: The other names the class's code uses, read when ``names`` are not all an object holds.
        self.spare = tuple(name for name in dict.fromkeys(_names_used(kind)) if self._readable(name))

    def _readable(self, name: str) -> bool:
        for base in self.kind.__mro__:
            if name in vars(base):
                member = vars(base)[name]
                if hasattr(type(member), "__get__"):
                    return False  # getattr would call it (and a cached_property would make the __dict__)
                self.on_class[name] = member
                break
        return True

    def read(self, obj: object, names: Iterable[str]) -> dict[str, Any]:
        """The values of those ``names`` that ``obj`` holds (a class's own value is not the object's)."""
        found, on_class = {}, self.on_class
        for name in names:
            value = getattr(obj, name, _MISSING)
            if value is not _MISSING and value is not on_class.get(name, _MISSING):
                found[name] = value
        return found

    def hold(self, names: Iterable[str]) -> None:
        new = [name for name in names if name not in self.names and self._readable(name)]
        if new:
            self.names.update(dict.fromkeys(new))
            self.spare = tuple(name for name in self.spare if name not in self.names)


_LAYOUTS: dict[type, _Layout] = {}


def _names_used(kind: type) -> Iterator[str]:
    """The names the code of ``kind``'s methods and its base classes' uses, ``object``'s aside: a superset of
    the attribute names they store (``co_names``: reading it, unlike the bytecode, allocates nothing)."""
    for base in kind.__mro__[:-1]:
        for member in vars(base).values():
            for function in (member, getattr(member, "__func__", None), *_accessors(member)):
                code = getattr(function, "__code__", None)
                if isinstance(code, types.CodeType):
                    yield from _names_in(code)


def _accessors(member: object) -> tuple[object, ...]:
    if isinstance(member, property):
        return member.fget, member.fset, member.fdel
    return ()


def _names_in(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):  # nested functions and comprehensions
            yield from _names_in(constant)
