"""Masking of secret values in everything the notebook extension shows.

    >>> masker = SecretMasker()
    >>> masker.add("hunter2-token")
    >>> masker.mask("the token is hunter2-token")
    'the token is ***'

The extension keeps one masker per kernel: every ``--secret`` value used in it and the API key
are added, and every line, header, summary and error message passes through ``mask`` before it
is displayed, so a secret the agent prints back is hidden too.
"""

from __future__ import annotations

import json
import re
from typing import Any

MASK = "***"
CUT = "…"  # what a line cut short for display ends with (render.shorten)
# A cut line ending in this many or more leading characters of a secret has them masked too.
PARTIAL_MIN = 3


class SecretMasker:
    """Replaces every known secret value in a text with ``***``.

    Each value is also matched in its JSON-escaped form, since unknown events are shown as
    compact JSON, where a quote or a newline in a secret appears escaped.
    """

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:  # never the values themselves
        return f"<SecretMasker: {len(self._values)} value(s)>"

    def add(self, value: str | None) -> None:
        """Remember ``value`` (and its JSON-escaped form) as a secret; empty values are ignored."""
        if not value or not value.strip():
            return
        forms = {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]}
        if forms <= self._values:
            return
        self._values |= forms
        # Longest first, so a secret that contains another is masked whole.
        alternatives = sorted(self._values, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def mask(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        if self._pattern is None or not text:
            return text
        text = self._pattern.sub(MASK, text)
        return self._mask_cut_tail(text) if text.endswith(CUT) else text

    def _mask_cut_tail(self, text: str) -> str:
        """A line cut short may end in the first characters of a secret: mask those too."""
        body = text[: -len(CUT)]
        longest = 0
        for value in self._values:
            for n in range(min(len(value) - 1, len(body)), max(PARTIAL_MIN, longest + 1) - 1, -1):
                if body.endswith(value[:n]):
                    longest = n
                    break
        return body[: len(body) - longest] + MASK + CUT if longest else text

    def mask_frame(self, frame: Any) -> Any:
        """A pandas DataFrame with secrets masked in its text columns (and a text index).

        A cell that is not a string (a dict of metadata, a list) but shows a secret when
        printed becomes its masked text. ``frame`` is left as it was; a copy is returned when
        something had to change.

            >>> masker.mask_frame(run.logs())  # doctest: +SKIP
        """
        if self._pattern is None:
            return frame
        from pandas.api.types import is_string_dtype

        def textual(dtype: Any) -> bool:
            return dtype.kind == "O" or is_string_dtype(dtype)

        out = None
        for position in range(frame.shape[1]):
            values = frame.iloc[:, position]
            if not textual(values.dtype):
                continue
            masked = values.map(self._mask_value, na_action="ignore")
            if not masked.equals(values):
                out = frame.copy() if out is None else out
                out.isetitem(position, masked.astype(values.dtype))
        index = frame.index
        if textual(index.dtype):
            masked_index = index.map(self._mask_value)
            if not masked_index.equals(index):
                out = frame.copy() if out is None else out
                out.index = masked_index
        return frame if out is None else out

    def _mask_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mask(value)
        text = str(value)
        masked = self.mask(text)
        return value if masked == text else masked
