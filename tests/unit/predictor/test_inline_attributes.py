"""Reading attributes by name: all of them, exactly, or None; never giving the object a ``__dict__``."""

from __future__ import annotations

import functools
import gc
import pickle
from typing import Any

from tickcast.predictor import snapshot_pickling
from tickcast.predictor.inline_attributes import learn_names, read_attributes


def _has_real_dict(obj: object) -> bool:
    """Whether ``obj`` refers to a dict of its attributes rather than to their values (look, don't ask)."""
    held = [referent for referent in gc.get_referents(obj) if referent is not type(obj)]
    return len(held) == 1 and type(held[0]) is dict and all(getattr(obj, k, None) is v for k, v in held[0].items())


def test_the_first_object_of_a_class_is_read_from_the_names_its_code_uses() -> None:
    class Fresh:
        def __init__(self) -> None:
            self.mean, self.label = 0.5, "a"
            self._store()

        def _store(self) -> None:
            self.count = 3

    fresh = Fresh()
    assert read_attributes(fresh) == {"mean": 0.5, "label": "a", "count": 3}
    assert not _has_real_dict(fresh)


def test_an_attribute_set_from_outside_is_found_only_once_learnt() -> None:
    class Plain:
        def __init__(self) -> None:
            self.x = 1.5

    outside = Plain()
    outside.extra = [1]  # type: ignore[attr-defined]
    assert read_attributes(outside) is None
    assert not _has_real_dict(outside)  # None, without making a __dict__ either
    learn_names(Plain, ["extra"])
    assert read_attributes(outside) == {"x": 1.5, "extra": [1]}


class _Defaults:
    """A class attribute the object may shadow with the very same object, or not hold at all."""

    flag: object = None

    def __init__(self, shadow: bool) -> None:
        self.value = 2.5
        if shadow:
            self.flag = None


def test_a_value_that_is_also_the_class_attribute_is_never_guessed() -> None:
    assert read_attributes(_Defaults(shadow=False)) == {"value": 2.5}
    # Held, but it cannot be told from the class's: not named, so the proof fails rather than guess.
    assert read_attributes(_Defaults(shadow=True)) is None
    # The other way round: the class's name read, another name holding the same object: not passed off as it.
    stranger = _Defaults(shadow=False)
    stranger.other = None  # type: ignore[attr-defined]
    assert read_attributes(stranger) is None


def test_a_snapshot_restores_what_the_object_held_whichever_way_it_was_read() -> None:
    objects: list[Any] = [_Defaults(shadow=False), _Defaults(shadow=True), _Defaults(shadow=False)]
    objects[2].late = "x"
    restored = pickle.loads(snapshot_pickling.dumps(objects))  # nosec B301 # pickled just above
    assert [vars(obj) for obj in restored] == [vars(obj) for obj in objects]


class _Lazy:
    def __init__(self) -> None:
        self.base = 2.0

    @functools.cached_property
    def doubled(self) -> float:
        return self.base * 2


def test_descriptors_are_not_called() -> None:
    lazy = _Lazy()
    assert read_attributes(lazy) == {"base": 2.0}
    assert not _has_real_dict(lazy)  # the cached property was not computed (it would have made the dict)
    assert lazy.doubled == 4.0
    assert read_attributes(lazy) is None  # now held in a real __dict__: the caller reads it


def test_an_attribute_holding_its_own_class_is_read() -> None:
    class Typed:
        def __init__(self) -> None:
            self.kind = Typed

    assert read_attributes(Typed()) == {"kind": Typed}


def test_a_class_answering_missing_names_itself_is_not_read() -> None:
    class Answering:
        def __init__(self) -> None:
            self.x = 1

        def __getattr__(self, name: str) -> int:
            return 0

    assert read_attributes(Answering()) is None
