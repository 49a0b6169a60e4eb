"""How a label queue packs its pending forecasts: shared name tuples, and one shared layout per kind of entry.

A :class:`~tickcast.predictor.delayed_labels.LabelQueue` keeps every pending forecast's numbers one after
another in one ``array('d')``; what tells them apart is a *layout* per entry, ``(feature names, challenger
slots, count of numbers)``, a tuple shared by every entry of that kind in the worker (one or two kinds).
"""

from __future__ import annotations

#: An entry's feature names, challenger slots (None without challengers) and count of numbers.
Layout = tuple[tuple[str, ...], tuple[str, ...] | None, int]

#: One tuple object per distinct set of feature names (in order), shared by every pending forecast of every
#: symbol: a forecaster serves one set, so this holds one or two entries.
_FEATURE_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}
_LAYOUTS: dict[Layout, Layout] = {}
#: Feature names -> the shared layout of an entry with those features and no challengers (what offer enqueues).
_PLAIN_LAYOUTS: dict[tuple[str, ...], Layout] = {}


def shared_names(names: tuple[str, ...]) -> tuple[str, ...]:
    """The one shared tuple equal to ``names``.

    >>> shared_names(("a", "b")) is shared_names(tuple(["a", "b"]))
    True
    """
    return _FEATURE_NAMES.setdefault(names, names)


def shared_layout(names: tuple[str, ...], slots: tuple[str, ...] | None, width: int) -> Layout:
    """The one shared layout tuple of an entry of this kind (``names`` and ``slots`` already shared).

    >>> shared_layout(("a",), None, 7) is shared_layout(("a",), None, 7)
    True
    """
    layout = (names, slots, width)
    return _LAYOUTS.setdefault(layout, layout)


def plain_layout(names: tuple[str, ...], head: int) -> Layout:
    """The shared layout of an entry with features ``names`` after ``head`` numbers, and no challengers.

    One lookup, once per tick; ``head`` (the numbers before the features) is the same on every call.

    >>> plain_layout(("r1_bps",), 6) is shared_layout(shared_names(("r1_bps",)), None, 7)
    True
    """
    layout = _PLAIN_LAYOUTS.get(names)
    if layout is None:
        shared = shared_names(names)
        layout = _PLAIN_LAYOUTS[shared] = shared_layout(shared, None, head + len(shared))
    return layout


def width_of(layouts: list[Layout], count: int) -> int:
    """How many packed numbers the first ``count`` entries take (a loop: cheaper than ``sum`` of a generator).

    >>> width_of([(("a",), None, 7), (("a",), ("pa",), 8)], 2), width_of([], 0)
    (15, 0)
    """
    width = 0
    for layout in layouts[:count]:
        width += layout[2]
    return width
