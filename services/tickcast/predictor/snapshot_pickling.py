"""Pickling a symbol's state so that, once restored, it costs what the worker that built it paid.

A plain ``pickle.loads`` rebuilds the same values in a costlier shape (issue 15, memory per symbol), in
four ways this module's :func:`dumps` avoids:

- **Attribute dicts.** CPython 3.11 keeps a fresh object's attributes inline, against keys its class
  shares; unpickling an ordinary object fills a real ``__dict__`` instead (about 400 bytes more per River
  model, measured). Here such an object's attributes travel as pickle's *slot state*, which
  the loader sets one by one with ``setattr``, as ``__init__`` did: they stay inline.
- **Strings.** Every load makes new copies of feature names (the keys of River's scaler statistics and
  weights), statuses and horizon labels, where live symbols share one copy. Here each string is loaded
  through ``sys.intern``, so all symbols share it again.
- **Numbers.** Pickle loads a new float or int at every place one is referenced (settings such as a
  fading factor or a coverage, a forecast kept twice); here each distinct number among the state's
  attributes is loaded once and shared by all its places in that state. (Values of mappings, per-feature
  statistics that seldom repeat, are left as they are: sharing them cost more time than it saved bytes.)
- **Arrays.** ``array`` loads with room to grow; here it is rebuilt at its exact size, as it was built.

Only standard callables (``copyreg.__newobj__``, ``sys.intern``, ``float``, ``int``, ``array.array``)
appear in the pickle besides the classes a plain pickle names, so any worker reads it with a plain
``pickle.loads``, older ones included, and snapshots pickled the plain way still load (they keep the
costlier shape until their next snapshot). The price is time: pickling runs Python code per object and
per attribute, ~3x a plain ``pickle.dumps`` (~0.5 ms more for a busy symbol); loading is as fast.

>>> from tickcast.predictor.models import build_model
>>> model = build_model("linear")
>>> model.learn_one({"r1_bps": 1.0}, 0.5)
>>> restored = pickle.loads(dumps(model))  # nosec B301 # pickled just above
>>> restored.predict_one({"r1_bps": 1.0}) == model.predict_one({"r1_bps": 1.0})
True
>>> scaler = restored.steps["StandardScaler"]
>>> next(iter(scaler.counts)) is sys.intern("r1_bps")
True
"""

from __future__ import annotations

import copyreg
import io
import pickle  # nosec B403 # this module pickles; what is unpickled is decided by its callers
import sys
from array import array
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterator
from types import FunctionType
from typing import Any

from river.utils import VectorDict

from tickcast.predictor.inline_attributes import MANAGED_DICT as _MANAGED_DICT
from tickcast.predictor.inline_attributes import learn_names, read_attributes

#: Ints CPython keeps one shared object of anyway.
_CACHED_INTS = range(-5, 257)
#: Mappings rebuilt from their (key, value) items: their string keys are interned as they load.
_MAPPINGS = (Counter, OrderedDict, defaultdict)
_DEFAULT_REDUCE_EX = object.__reduce_ex__
_DEFAULT_REDUCE = object.__reduce__
#: What the default reducer rebuilds an object with (pickle writes it as the NEWOBJ opcode).
_NEWOBJ = copyreg.__newobj__  # type: ignore[attr-defined]


def dumps(state: object) -> bytes:
    """``state`` pickled (highest protocol) so that it loads in the shape it was built in (module doc).

    >>> pickle.loads(dumps({"a": [1.5, "x"]}))  # nosec B301 # pickled just above
    {'a': [1.5, 'x']}
    """
    buffer = io.BytesIO()
    _CompactPickler(buffer).dump(state)
    return buffer.getvalue()


class _StandIn:
    """Pickled in place of a string or a number: loads through ``reduction`` (``sys.intern``, ``float`` or
    ``int``). One per distinct value in a pickle, so pickle's memo makes every place that held the value
    share the one object loaded."""

    __slots__ = ("reduction", "value")

    def __init__(self, value: str | float | int) -> None:
        self.value = value  # kept alive while the pickler runs
        self.reduction = (sys.intern if type(value) is str else type(value), (value,))


class _CompactPickler(pickle.Pickler):
    """A pickler whose output loads compact (module doc); one per :func:`dumps`."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        # By value, one table per type (1 == 1.0 == True would share a key); a zero float by its sign too.
        self._strings: dict[str, _StandIn] = {}
        self._floats: dict[float | str, _StandIn] = {}
        self._ints: dict[int, _StandIn] = {}

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is _StandIn:
            return obj.reduction
        if kind in _MAPPINGS:
            reduced = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
            if kind is Counter:  # (Counter, (dict,)): its dict's keys
                return kind, (self._dict(reduced[1][0]),)
            return (*reduced[:4], self._items(reduced[4]))
        if kind is VectorDict:  # (VectorDict, (data, default factory, mask, use factory))
            reduced = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
            data, *rest = reduced[1]
            return (kind, (self._dict(data), *rest), *reduced[2:])
        if kind is array:
            return array, (obj.typecode, obj.tolist())
        if (
            isinstance(obj, type)
            or kind is FunctionType  # pickled by name (a reducer's callable, e.g. Horizon's)
            or kind.__reduce_ex__ is not _DEFAULT_REDUCE_EX
            or kind.__reduce__ is not _DEFAULT_REDUCE
        ):
            return NotImplemented  # a class, a function, or an object with a reducer of its own: as it asks
        return self._inline(obj, kind)

    def _inline(self, obj: Any, kind: type) -> Any:
        attributes = read_attributes(obj) if _reduces_to_attributes(kind) else None
        if attributes is not None:
            # What __reduce_ex__ gives, without reading (so making) the object's __dict__ (inline_attributes).
            reduced: tuple[Any, ...] = (_NEWOBJ, (kind,), attributes or None)
        else:
            reduced = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
            if not isinstance(reduced, tuple) or reduced[0] is not _NEWOBJ or len(reduced) < 3:
                return reduced
            if isinstance(reduced[2], dict) and kind.__flags__ & _MANAGED_DICT:
                learn_names(kind, reduced[2])  # the next objects of its kind are read by name
        state = reduced[2]
        if isinstance(state, dict) and _keeps_attributes_inline(kind, state):
            # Names need no stand-in: setattr interns them.
            value = self._value
            state = (None, {name: value(item) for name, item in state.items()}) if state else None
        elif isinstance(state, dict):
            state = self._attributes(state)
        elif isinstance(state, tuple) and len(state) == 2:
            state = tuple(self._attributes(part) if isinstance(part, dict) else part for part in state)
        elif isinstance(state, list):
            value = self._value
            state = [value(item) for item in state]
        return (reduced[0], reduced[1], state, *reduced[3:])

    def _attributes(self, mapping: dict[Any, Any]) -> dict[Any, Any]:
        name, value = self._name, self._value
        return {name(key): value(item) for key, item in mapping.items()}

    def _dict(self, mapping: dict[Any, Any]) -> dict[Any, Any]:
        name = self._name
        return {name(key): item for key, item in mapping.items()}

    def _items(self, items: Iterator[tuple[Any, Any]] | None) -> Iterator[tuple[Any, Any]] | None:
        name = self._name
        return None if items is None else ((name(key), item) for key, item in items)

    def _name(self, key: Any) -> Any:
        if type(key) is not str:
            return key
        stand_in = self._strings.get(key)
        if stand_in is None:
            stand_in = self._strings[key] = _StandIn(key)
        return stand_in

    def _value(self, value: Any) -> Any:
        kind = type(value)
        if kind is str:
            table: dict[Any, _StandIn] = self._strings
            key: Any = value
        elif kind is float:
            table, key = self._floats, (value if value else value.hex())  # 0.0 == -0.0, distinct
        elif kind is int and value not in _CACHED_INTS:
            table, key = self._ints, value
        else:
            return value
        stand_in = table.get(key)
        if stand_in is None:
            stand_in = table[key] = _StandIn(value)
        return stand_in


#: Per type: whether ``__reduce_ex__`` gives its instances' attributes, and nothing else, as their state.
_REDUCES_TO_ATTRIBUTES: dict[type, bool] = {}


def _reduces_to_attributes(kind: type) -> bool:
    """Whether ``kind``'s instances pickle as ``(copyreg.__newobj__, (kind,), their attributes)`` (the default
    reducer, given an ordinary class keeping its attributes inline), so they can be read by name instead."""
    reduces = _REDUCES_TO_ATTRIBUTES.get(kind)
    if reduces is None:
        reduces = _REDUCES_TO_ATTRIBUTES[kind] = bool(
            kind.__flags__ & _MANAGED_DICT
            and kind.__getstate__ is object.__getstate__
            and not hasattr(kind, "__getnewargs_ex__")
            and not hasattr(kind, "__getnewargs__")
            and not issubclass(kind, list | dict)  # pickled with their items too
        )
    return reduces


#: Per type: None if its instances cannot load their attributes through setattr, else the names setattr
#: would hand to a descriptor (a property's setter) instead of storing them.
_INLINE_BY_TYPE: dict[type, frozenset[str] | None] = {}


def _keeps_attributes_inline(kind: type, attributes: dict[str, Any]) -> bool:
    """Whether ``kind``'s instance with ``attributes`` holds them inline, and loads them right with setattr."""
    if kind not in _INLINE_BY_TYPE:
        slots = (vars(base).get("__slots__", ()) for base in kind.__mro__)
        named_slots = [name for names in slots for name in ((names,) if isinstance(names, str) else names)]
        capable = (
            kind.__flags__ & _MANAGED_DICT
            and not set(named_slots) - {"__dict__", "__weakref__"}
            and not hasattr(kind, "__setstate__")  # it would be handed the slot-state tuple
            and kind.__setattr__ is object.__setattr__  # e.g. a frozen dataclass refuses setattr
        )
        descriptors = {
            name for base in kind.__mro__ for name, member in vars(base).items() if hasattr(type(member), "__set__")
        }
        _INLINE_BY_TYPE[kind] = frozenset(descriptors - {"__dict__", "__weakref__"}) if capable else None
    intercepted = _INLINE_BY_TYPE[kind]
    return intercepted is not None and intercepted.isdisjoint(attributes)
