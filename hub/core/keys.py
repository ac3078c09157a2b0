"""Typed keys for ``hub.data``, so a type checker knows what each plugin put there.

``hub.data`` is the one dict plugins share (the broker URL, the running
transport, a plugin's own runtime object).  A plain ``dict[str, Any]`` makes
every read an ``Any``; Home Assistant's ``HassKey[T]`` solves that with a
``str`` subclass carrying a type parameter, and this is the same idea::

    DATA_TRACKER: HubKey[PresenceTracker] = HubKey("presence")

    hub.data[DATA_TRACKER] = tracker        # checked: must be a PresenceTracker
    tracker = hub.data.get(DATA_TRACKER)    # inferred: PresenceTracker | None

At runtime a key is a ``str`` and :class:`HubData` a dict: the typed signatures
exist only for the type checker, so a lookup costs what it always did.  (To the
type checker a key is *not* a ``str``, as Home Assistant types its ``HassKey``, so a value
of the wrong type is an error instead of matching an untyped ``str`` overload.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

_T = TypeVar("_T")
_D = TypeVar("_D")


if TYPE_CHECKING:

    class HubKey(Generic[_T]):
        """To the type checker a key is not a ``str``, so a wrongly typed value cannot fall back to ``Any``."""

        def __init__(self, value: str, /) -> None: ...
        def __hash__(self) -> int: ...
        def __eq__(self, other: object) -> bool: ...

else:

    class HubKey(str, Generic[_T]):
        """A ``hub.data`` key whose value has type ``_T``; name it ``<plugin>.<thing>``."""

        __slots__ = ()


class HubData(dict["HubKey[Any] | str", Any]):
    """``hub.data``: a dict whose typed methods give the value type of a :class:`HubKey` (plain str keys give Any)."""

    if TYPE_CHECKING:

        @overload  # type: ignore[override]
        def __getitem__(self, key: HubKey[_T], /) -> _T: ...
        @overload
        def __getitem__(self, key: str, /) -> Any: ...
        def __getitem__(self, key: HubKey[Any] | str, /) -> Any: ...

        @overload  # type: ignore[override]
        def __setitem__(self, key: HubKey[_T], value: _T, /) -> None: ...
        @overload
        def __setitem__(self, key: str, value: Any, /) -> None: ...
        def __setitem__(self, key: HubKey[Any] | str, value: Any, /) -> None: ...

        @overload  # type: ignore[override]
        def get(self, key: HubKey[_T], /) -> _T | None: ...
        @overload
        def get(self, key: HubKey[_T], default: _D, /) -> _T | _D: ...
        @overload
        def get(self, key: str, default: Any = None, /) -> Any: ...
        def get(self, key: HubKey[Any] | str, default: Any = None, /) -> Any: ...

        @overload  # type: ignore[override]
        def pop(self, key: HubKey[_T], /) -> _T: ...
        @overload
        def pop(self, key: HubKey[_T], default: _D, /) -> _T | _D: ...
        @overload
        def pop(self, key: str, default: Any = ..., /) -> Any: ...
        def pop(self, key: HubKey[Any] | str, default: Any = ..., /) -> Any: ...

        @overload  # type: ignore[override]
        def setdefault(self, key: HubKey[_T], default: _T, /) -> _T: ...
        @overload
        def setdefault(self, key: str, default: Any = None, /) -> Any: ...
        def setdefault(self, key: HubKey[Any] | str, default: Any = None, /) -> Any: ...
