"""Secret values never survive masking, in plain or JSON-escaped form."""

from __future__ import annotations

import json

from vm0_notebook.notebook.masking import MASK, SecretMasker


def test_masks_every_occurrence_of_every_secret() -> None:
    masker = SecretMasker()
    masker.add("s3cr3t-value")
    masker.add("vm0_test_0123456789abcdef")
    text = "key vm0_test_0123456789abcdef and s3cr3t-value twice: s3cr3t-value"
    assert masker.mask(text) == f"key {MASK} and {MASK} twice: {MASK}"


def test_json_escaped_form_is_masked_too() -> None:
    masker = SecretMasker()
    secret = 'pa"ss\nword'
    masker.add(secret)
    shown = json.dumps({"env": secret})
    assert "pa" not in masker.mask(shown).replace('"env"', "")
    assert masker.mask(secret) == MASK


def test_longest_secret_wins_when_one_contains_another() -> None:
    masker = SecretMasker()
    masker.add("abcd")
    masker.add("abcdefgh")
    assert masker.mask("abcdefgh") == MASK


def test_empty_values_are_ignored_and_repr_hides_values() -> None:
    masker = SecretMasker()
    masker.add("")
    masker.add(None)
    masker.add("   ")
    assert len(masker) == 0 and masker.mask("text") == "text"
    masker.add("hidden-one")
    assert "hidden-one" not in repr(masker)
