"""Lazy lists: every list method returns a pager that fetches pages as you iterate.

    for run in client.runs.list(status="completed"):   # pages fetched on demand
        ...
    client.runs.list().to_pandas()                     # all of them as a DataFrame

On an ``AsyncClient`` use ``async for`` and ``await pager.to_pandas()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from ._base import blame_last_response
from ._ops import Request
from ._parse import normalize
from .errors import InvalidResponseError

if TYPE_CHECKING:  # pragma: no cover
    from pandas import DataFrame

T = TypeVar("T")
MAX_PAGE = 100


def split_page(data: Any) -> tuple[list[Any], str | None]:
    """A list answer's items and next cursor (None on the last page), in either case style."""
    if isinstance(data, list):
        return data, None
    if not isinstance(data, Mapping) or not isinstance(data.get("data"), list):
        raise InvalidResponseError("Expected a list answer {data: [...], pagination: {...}}")
    src = normalize(data)
    page = src.get("pagination")
    page = normalize(page) if isinstance(page, Mapping) else src
    cursor = page.get("next_cursor")
    if page.get("has_more") is False or not cursor:
        cursor = None
    return data["data"], cursor


class _Pager(Generic[T]):
    def __init__(
        self,
        client: Any,
        request: Request,
        parse: Callable[[Any], T],
        model: type,
        keep: Callable[[T], bool] | None = None,
        limit: int | None = None,
    ) -> None:
        self._client = client
        self._request = request
        self._parse = parse
        self._model = model
        self._keep = keep
        self._limit = limit

    def _page_request(self, cursor: str | None) -> Request:
        params = dict(self._request.params or {})
        size = min(self._limit, MAX_PAGE) if self._limit else MAX_PAGE
        params.setdefault("limit", max(size, 1))
        if cursor:
            params["cursor"] = cursor
        return replace(self._request, params=params)

    def _read(self, page: Any, seen: int) -> tuple[str | None, list[T], bool]:
        """One page: its next cursor, the items kept, and whether the limit is hit.
        An off-contract page names the status and request id of the answer it came in."""
        try:
            items, cursor = split_page(page)
            return (cursor, *self._take(items, seen))
        except InvalidResponseError as exc:
            blame_last_response(exc)
            raise

    def _take(self, raw_items: list[Any], seen: int) -> tuple[list[T], bool]:
        """Items of one page that pass the client-side filter; True when the limit is hit."""
        out: list[T] = []
        for raw in raw_items:
            item = self._parse(raw)
            if self._keep is not None and not self._keep(item):
                continue
            out.append(item)
            if self._limit is not None and seen + len(out) >= self._limit:
                return out, True
        return out, False

    def as_json(self) -> Self:
        """The same list with each item as the API's JSON object, unparsed: for code that
        reads many items column by column, as ``run.logs()`` builds its frame."""
        keep, parse = self._keep, self._parse
        return type(self)(self._client, self._request, _as_is, self._model,
                          None if keep is None else (lambda raw: keep(parse(raw))), self._limit)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._model.__name__} {self._request.path}>"


def _as_is(item: Any) -> Any:
    return item


class Pager(_Pager[T]):
    """A lazily paged list; iterate it, or call ``.to_pandas()``."""

    def __iter__(self) -> Iterator[T]:
        cursor: str | None = None
        seen = 0
        seen_cursors: set[str] = set()
        while True:
            page = self._client.drive_one(self._page_request(cursor))
            cursor, taken, full = self._read(page, seen)
            yield from taken
            seen += len(taken)
            if full or cursor is None or cursor in seen_cursors:
                return
            seen_cursors.add(cursor)

    def to_list(self) -> list[T]:
        """Every item, fetched now."""
        return list(self)

    def to_pandas(self) -> DataFrame:
        """Every item as a DataFrame (one row each)."""
        from .. import frames

        return frames.records_frame(self._model, list(self))


class AsyncPager(_Pager[T]):
    """The async twin of :class:`Pager`: ``async for``, ``await .to_pandas()``."""

    async def __aiter__(self) -> AsyncIterator[T]:
        cursor: str | None = None
        seen = 0
        seen_cursors: set[str] = set()
        while True:
            page = await self._client.drive_one(self._page_request(cursor))
            cursor, taken, full = self._read(page, seen)
            for item in taken:
                yield item
            seen += len(taken)
            if full or cursor is None or cursor in seen_cursors:
                return
            seen_cursors.add(cursor)

    async def to_list(self) -> list[T]:
        """Every item, fetched now."""
        return [item async for item in self]

    async def to_pandas(self) -> DataFrame:
        """Every item as a DataFrame (one row each)."""
        from .. import frames

        return frames.records_frame(self._model, await self.to_list())
