"""One object per distinct selection configuration in a process, so a restored symbol shares its worker's.

Every symbol's :class:`~tickcast.predictor.selection.champion.ModelSelection` refers to its configuration,
and a snapshot carries a copy (an older worker needs it to read the snapshot alone). Loaded as it is, that
copy costs a restored symbol ~0.6 KB (the policies, their numbers and names) until its next tick adopts
the worker's object, and a quiet symbol may wait long for one. So every configuration registers here when
built, and a loaded selection swaps its copy for the registered equal one: nothing changes but identity.
Held weakly: a configuration no longer used by anyone leaves the registry.
"""

from __future__ import annotations

import weakref
from dataclasses import astuple
from typing import Any, TypeVar, cast

Config = TypeVar("Config")

_BY_VALUE: weakref.WeakValueDictionary[tuple[Any, ...], Any] = weakref.WeakValueDictionary()


def register(config: Any) -> None:
    """Make ``config`` (a frozen dataclass) the object :func:`shared` returns for its value, unless one is."""
    _BY_VALUE.setdefault(astuple(cast(Any, config)), config)


def shared(config: Config) -> Config:
    """The registered configuration equal to ``config``, or ``config`` itself if there is none.

    >>> from tickcast.predictor.selection.champion import SelectionConfig
    >>> worker = SelectionConfig("linear", ("pa",))
    >>> copy = SelectionConfig.__new__(SelectionConfig)  # as pickle builds one: no __init__, not registered
    >>> for name in ("incumbent", "challengers", "score_fraction", "promotion", "drift"):
    ...     object.__setattr__(copy, name, getattr(worker, name))
    >>> shared(copy) is worker, shared(SelectionConfig("pa")).incumbent
    (True, 'pa')
    """
    found = _BY_VALUE.get(astuple(cast(Any, config)))
    return config if found is None else found
