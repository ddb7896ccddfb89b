"""Reading the API's JSON: either case style, prefixed or plain ids, times, unknown fields.

Every model's ``from_api`` goes through :class:`ApiModel`, which accepts snake_case and
camelCase fields, takes a field under another name where a server variant uses one, parses
times into aware ``datetime`` objects and ignores fields it does not know, so a newer server
does not break an older client.
"""

from __future__ import annotations

import dataclasses
import json
import json.scanner
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from .. import contract
from .errors import InvalidResponseError

_scan = json.scanner.make_scanner(json.JSONDecoder())


def loads(text: str) -> Any:
    """``json.loads`` for an event frame, without its two whitespace regexes (a fifth of the
    client's work per event); anything unusual takes ``json.loads`` and its errors."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(key: str) -> str:
    """``executionTimeMs`` -> ``execution_time_ms``; snake_case keys pass unchanged."""
    return _CAMEL.sub(r"_\1", key).lower() if any(c.isupper() for c in key) else key


def is_snake(data: Mapping[str, Any]) -> bool:
    """True when every top-level key is already snake_case (``islower`` runs in C)."""
    return all(map(str.islower, data))


def normalize(data: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping with its top-level keys in snake_case (nested values untouched)."""
    if is_snake(data):
        return dict(data)
    return {k if k.islower() else snake(k): v for k, v in data.items()}


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 (``Z`` or offset) or epoch seconds/milliseconds -> aware datetime (naive: UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    try:
        return contract.parse_iso(str(value))
    except ValueError:
        return None


def iso(value: datetime | None) -> str | None:
    """A datetime as the API writes it (``2024-01-01T00:00:00.000Z``), None for None."""
    return contract.iso(value) if value else None


_ID_PREFIX = re.compile(r"^(agt|ag|run|vol|art|ses|sess|chk|upl|ver)_")


def plain_id(value: str) -> str:
    """An id without its type prefix, for comparing ids from servers that differ on prefixes."""
    return _ID_PREFIX.sub("", value)


@dataclass(frozen=True)
class _Spec:
    """What ``from_api`` needs to know of a model class, worked out once per class:
    ``dataclasses.fields()`` and a frozen dataclass ``__init__`` show in every ``runs.get``."""

    names: frozenset[str]  # the fields an answer may set
    required: frozenset[str]  # the fields it must set
    defaults: dict[str, Any]
    factories: tuple[tuple[str, Any], ...]


_SPECS: dict[type, _Spec] = {}


def _spec_of(cls: type) -> _Spec:
    spec = _SPECS.get(cls)
    if spec is None:
        fields = [f for f in dataclasses.fields(cls) if f.init]
        spec = _SPECS[cls] = _Spec(
            names=frozenset(f.name for f in fields if not f.name.startswith("_")),
            required=frozenset(
                f.name for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ),
            defaults={f.name: f.default for f in fields if f.default is not dataclasses.MISSING},
            factories=tuple((f.name, f.default_factory) for f in fields
                            if f.default_factory is not dataclasses.MISSING),
        )
    return spec


class ApiModel:
    """``from_api``: keep the known fields of a response object, converting as declared.

    Subclasses are frozen dataclasses; ``_aliases`` names the other keys a field may arrive
    under, ``_times`` the fields parsed as times, ``_convert`` builds nested models.
    """

    # field name -> other names it may arrive under (after snake-casing)
    _aliases: ClassVar[dict[str, tuple[str, ...]]] = {}
    _times: ClassVar[tuple[str, ...]] = ("created_at", "updated_at", "started_at", "completed_at")

    @classmethod
    def from_api(cls, data: Mapping[str, Any], **extra: Any) -> Self:
        """Build from one JSON object of the API (either case style, unknown keys ignored)."""
        if not isinstance(data, Mapping):
            raise InvalidResponseError(
                f"Expected a JSON object for {cls.__name__}, got {type(data).__name__}"
            )
        src = normalize(data)
        for name, others in cls._aliases.items():
            if src.get(name) is None:
                for other in others:
                    if src.get(other) is not None:
                        src[name] = src[other]
                        break
        spec = _spec_of(cls)
        kwargs = {k: v for k, v in src.items() if k in spec.names}
        for name in cls._times:
            if name in kwargs:
                kwargs[name] = parse_time(kwargs[name])
        kwargs.update(cls._convert(src))
        kwargs.update(extra)
        if not spec.required <= kwargs.keys():
            missing = sorted(spec.required - kwargs.keys())
            raise InvalidResponseError(
                f"The server's {cls.__name__} object lacks {', '.join(missing)}"
            )
        # what the generated __init__ would do (no model has __post_init__), at a third of
        # the cost of its object.__setattr__ per field
        obj = object.__new__(cls)
        values = obj.__dict__
        values.update(spec.defaults)
        for name, factory in spec.factories:
            values[name] = factory()
        values.update(kwargs)
        return obj

    @classmethod
    def _convert(cls, src: dict[str, Any]) -> dict[str, Any]:
        """Nested objects to models; overridden where a model has them."""
        return {}
