"""What every resource group shares: its client, and finding a resource by id or by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ...contract import NAME_RE
from .._ops import Op, Request
from .._parse import normalize
from ..errors import NotFoundError
from ..pagination import split_page


class Resource:
    """A group of API operations (``client.agents``, ``client.runs``...)."""

    # "agents", "volumes", "artifacts": the URL segment; the noun is its singular
    segment = ""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"

    @property
    def noun(self) -> str:
        """The singular of ``segment`` (``agent`` for ``agents``), for messages."""
        return self.segment.rstrip("s")

    def _path(self, key: str, *rest: str) -> str:
        return "/".join([f"/{self.segment}", quote(key, safe=""), *rest])

    def _names_op(self) -> Op[list[str]]:
        """The names that exist, for error messages (first few pages only)."""
        names: list[str] = []
        cursor = None
        for _ in range(3):
            params = {"limit": 100, "cursor": cursor}
            items, cursor = split_page((yield Request("GET", f"/{self.segment}", params=params)))
            names += [str(normalize(i).get("name")) for i in items if isinstance(i, Mapping)]
            if not cursor:
                break
        return sorted(names)

    def _not_found_op(self, key: str) -> Op[NotFoundError]:
        names = yield from self._names_op()
        known = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "") if names else "none"
        return NotFoundError(
            f"No such {self.noun}: {key!r}. Existing {self.segment}: {known}",
            status=404, code="resource_not_found",
        )

    def _find_op(self, key: str) -> Op[dict[str, Any]]:
        """The detail object of the resource with id or name ``key`` (a 404 names the others).

        A GET by key comes first (the local server accepts ids and names there); a server that
        only knows ids gets a lookup by name after its 404.
        """
        if not isinstance(key, str) or not key:
            raise NotFoundError(f"No such {self.noun}: {key!r}", code="resource_not_found")
        try:
            return (yield Request("GET", self._path(key)))
        except NotFoundError:
            if not NAME_RE.match(key):
                raise
        params: dict[str, Any] = {"name": key, "limit": 100}
        while True:
            items, cursor = split_page((yield Request("GET", f"/{self.segment}", params=params)))
            for item in items:
                src = normalize(item) if isinstance(item, Mapping) else {}
                if src.get("name") == key and src.get("id"):
                    return (yield Request("GET", self._path(str(src["id"]))))
            if not cursor:
                break
            params["cursor"] = cursor
        raise (yield from self._not_found_op(key))
