"""The VM0 API's shared facts, written once for the client, the frames, the widgets and the server.

Nothing here imports anything outside the standard library, so every layer may use it.

    >>> from vm0_notebook.contract import FINAL_STATUSES, name_problem
    >>> "cancelled" in FINAL_STATUSES
    True
    >>> name_problem("my-agent") is None
    True
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final, Literal

# -- runs ------------------------------------------------------------------------------------

RunStatus = Literal["pending", "running", "completed", "failed", "timeout", "cancelled"]
FinalStatus = Literal["completed", "failed", "timeout", "cancelled"]
STATUSES: Final = ("pending", "running", "completed", "failed", "timeout", "cancelled")
ACTIVE_STATUSES: Final = ("pending", "running")
FINAL_STATUSES: Final = frozenset({"completed", "failed", "timeout", "cancelled"})
# A run ends well only this way; the other final statuses fail a notebook cell.
SUCCESS_STATUS: Final = "completed"

# A run's output text is sent once, in its output events: the text blocks of each
# ``assistant`` event, joined, are one piece, and the pieces joined by newlines are the whole.
# A ``result`` the local server made up carries only the tail (``result_truncated: true``), as
# do the ``complete`` frame and the run detail (``output_truncated: true``).
RESULT_TRUNCATED: Final = "result_truncated"
OUTPUT_TRUNCATED: Final = "output_truncated"


def event_text(event: Any) -> str | None:
    """The text an ``assistant`` stream-JSON object adds to the output (None for none).

    >>> event_text({"type": "assistant", "message": {"content": [{"type": "text", "text": "hi"}]}})
    'hi'
    """
    if not isinstance(event, dict) or event.get("type") != "assistant":
        return None
    message = event.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return None
    texts = [b["text"] for b in content
             if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)]
    return "".join(texts) if texts else None


# -- logs ------------------------------------------------------------------------------------

LogType = Literal["agent", "system", "network"]
LogLevel = Literal["debug", "info", "warn", "error"]
LOG_TYPES: Final = ("agent", "system", "network")
LOG_LEVELS: Final = ("debug", "info", "warn", "error")  # in rising order of severity

# -- names and versions ----------------------------------------------------------------------

NAME_RE: Final = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_NAME_LENGTH: Final = 100
# Wherever a version is named, an exact id or a unique hex prefix at least this long.
VERSION_PREFIX_MIN: Final = 8
_HEX: Final = re.compile(r"^[0-9a-fA-F]+$")
VERSION_ID_RE: Final = re.compile(r"^[0-9a-f]{64}$")


def name_problem(name: str, param: str = "name") -> str | None:
    """Why ``name`` is not a valid agent, volume or artifact name, or None when it is."""
    if len(name) <= MAX_NAME_LENGTH and NAME_RE.match(name):
        return None
    return (
        f"Invalid {param} {name!r}: use 1-{MAX_NAME_LENGTH} lowercase letters, digits and "
        "hyphens, not starting or ending with a hyphen"
    )


def is_hex(ref: str) -> bool:
    """True when ``ref`` is made of hex digits only (a version id or a prefix of one)."""
    return bool(_HEX.match(ref))


def version_prefix_problem(ref: str) -> str | None:
    """Why a hex version reference is too short to name a version, or None.

    ``latest`` and references that are not hex are not judged here.
    """
    if ref == "latest" or not is_hex(ref) or len(ref) >= VERSION_PREFIX_MIN:
        return None
    return (
        f"Version reference {ref.lower()!r} is too short: "
        f"use {VERSION_PREFIX_MIN} or more hex characters"
    )


# -- errors ----------------------------------------------------------------------------------

# The error envelope's ``type`` and the HTTP status that carries it.
ERROR_STATUS: Final = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "authorization_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "rate_limit_error": 429,
    "api_error": 500,
}
ERROR_TYPE_OF_STATUS: Final = {status: type_ for type_, status in ERROR_STATUS.items()}

# -- times -----------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with millisecond precision and a ``Z``; sorts as text in time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_iso() -> str:
    """The current time as :func:`iso` writes it."""
    return iso(datetime.now(UTC))


def parse_iso(value: str) -> datetime:
    """An ISO-8601 timestamp (``Z`` or an offset; naive means UTC) as an aware datetime.

    Raises ValueError for text that is not a timestamp.
    """
    try:  # the API's own form (``...T12:00:00.000Z``) parses as it is
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# -- secrets ---------------------------------------------------------------------------------

MASK: Final = "***"
CUT: Final = "…"  # what a line cut short for display ends with
# A cut line ending in this many or more leading characters of a secret has them masked too.
PARTIAL_MIN: Final = 3
# Pieces of a multi-line secret shorter than this are left alone: they would mask common words.
LINE_PIECE_MIN: Final = 4


def secret_forms(value: str) -> set[str]:
    """Every form in which ``value`` can show up in output: as written, JSON-escaped, each of
    its lines (output is handled a line at a time), and its common encodings."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    forms.update(part for part in value.splitlines() if len(part) >= LINE_PIECE_MIN)
    raw = value.encode()
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode()
        forms.update({text, text.rstrip("=")})
    forms.update({raw.hex(), raw.hex().upper()})
    forms.update({urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)})
    forms.discard("")
    return forms


class SecretMasker:
    """Replaces every known secret with ``***`` in text and in decoded JSON values.

        >>> masker = SecretMasker(["hunter2-token"])
        >>> masker.mask("the token is hunter2-token")
        'the token is ***'
        >>> masker.mask_value({"text": "aHVudGVyMi10b2tlbg=="})
        {'text': '***'}

    Its repr never shows a value.
    """

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def __len__(self) -> int:
        return len(self._secrets)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __repr__(self) -> str:
        return f"<SecretMasker: {len(self._secrets)} value(s)>"

    def add(self, value: str | None) -> None:
        """Remember ``value`` as a secret; empty and blank values are ignored."""
        if not value or not value.strip() or value in self._secrets:
            return
        self._secrets.add(value)
        self._forms |= secret_forms(value)
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def mask(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``.

        A line cut short for display (ending in ``…``) that ends in the first few characters
        of a secret has those masked too.
        """
        if self._pattern is None or not text:
            return text
        text = self._pattern.sub(MASK, text)
        return self._mask_cut_tail(text) if text.endswith(CUT) else text

    def mask_value(self, value: Any) -> Any:
        """Every string (keys too) in a decoded JSON value, masked."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self._pattern.sub(MASK, value)
        if isinstance(value, dict):
            return {self.mask_value(k): self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask_value(v) for v in value]
        return value

    def _mask_cut_tail(self, text: str) -> str:
        body = text[: -len(CUT)]
        longest = 0
        for value in self._forms:
            for n in range(min(len(value) - 1, len(body)), max(PARTIAL_MIN, longest + 1) - 1, -1):
                if body.endswith(value[:n]):
                    longest = n
                    break
        return body[: len(body) - longest] + MASK + CUT if longest else text
