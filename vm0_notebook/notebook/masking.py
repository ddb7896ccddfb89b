"""Masking of secret values in everything the notebook extension shows, DataFrames included.

    >>> masker = SecretMasker()
    >>> masker.add("hunter2-token")
    >>> masker.mask("the token is hunter2-token")
    'the token is ***'

The extension keeps one masker per kernel: every ``--secret`` value used in it and the API key
are added, and every line, header, summary and error message passes through ``mask`` before it
is displayed, so a secret the agent prints back is hidden too. The rules (which forms of a
secret are matched, the cut-tail rule) are those of the contract's masker
(:class:`vm0_notebook.contract.SecretMasker`); this layer only adds the pandas frames.
"""

from __future__ import annotations

from typing import Any

from ..contract import CUT, MASK
from ..contract import SecretMasker as _ContractMasker

__all__ = ["CUT", "MASK", "SecretMasker"]


class SecretMasker(_ContractMasker):
    """The contract's masker, which can also mask a pandas DataFrame (:meth:`mask_frame`)."""

    def mask_frame(self, frame: Any) -> Any:
        """A pandas DataFrame with secrets masked in its text columns (and a text index).

        A cell that is not a string (a dict of metadata, a list) but shows a secret when
        printed becomes its masked text. ``frame`` is left as it was; a copy is returned when
        something had to change.

            >>> masker.mask_frame(run.logs())  # doctest: +SKIP
        """
        if not self:
            return frame
        from pandas.api.types import is_string_dtype

        def textual(dtype: Any) -> bool:
            return dtype.kind == "O" or is_string_dtype(dtype)

        out = None
        for position in range(frame.shape[1]):
            values = frame.iloc[:, position]
            if not textual(values.dtype):
                continue
            masked = values.map(self._mask_cell, na_action="ignore")
            if not masked.equals(values):
                out = frame.copy() if out is None else out
                out.isetitem(position, masked.astype(values.dtype))
        index = frame.index
        if textual(index.dtype):
            masked_index = index.map(self._mask_cell)
            if not masked_index.equals(index):
                out = frame.copy() if out is None else out
                out.index = masked_index
        return frame if out is None else out

    def _mask_cell(self, value: Any) -> Any:
        # a non-string cell is shown by its str(): masked as that text when it holds a secret
        if isinstance(value, str):
            return self.mask(value)
        text = str(value)
        masked = self.mask(text)
        return value if masked == text else masked
