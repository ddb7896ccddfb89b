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


def test_frames_are_masked_in_text_columns_objects_and_index_without_change_in_place() -> None:
    import pandas as pd

    masker = SecretMasker()
    masker.add("s3cr3t-value")
    frame = pd.DataFrame(
        {
            "message": ["token s3cr3t-value here", None, "fine"],
            "count": [1, 2, 3],
            "metadata": [{"env": "s3cr3t-value"}, {}, None],
            "name": pd.array(["s3cr3t-value", "b", "c"], dtype="string"),
        },
        index=["s3cr3t-value", "i", "j"],
    )
    masked = masker.mask_frame(frame)
    assert "s3cr3t-value" not in masked.to_string() + masked.to_html()
    assert masked["message"].tolist()[0] == f"token {MASK} here"
    assert masked["metadata"].tolist()[1:] == [{}, None]  # only what shows a secret changes
    assert list(masked.dtypes) == list(frame.dtypes) and masked["count"].tolist() == [1, 2, 3]
    assert frame.iloc[0, 0] == "token s3cr3t-value here"  # the caller's frame is untouched
    clean = pd.DataFrame({"message": ["nothing to hide"]})
    assert masker.mask_frame(clean) is clean


def test_a_line_cut_inside_a_secret_hides_the_part_that_shows() -> None:
    masker = SecretMasker()
    masker.add("hunter2-token")
    assert masker.mask("the token is hunte…") == "the token is ***…"
    assert masker.mask("the token is hu…") == "the token is hu…"  # too short to tell
    assert masker.mask("nothing secret here…") == "nothing secret here…"
