from __future__ import annotations

import pytest

from app.errors import InvalidRequest
from app.videos.parsing import nest


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("prompt", "x")], {"prompt": "x"}),
        ([("input_reference[image_url]", "https://a/b.png")], {"input_reference": {"image_url": "https://a/b.png"}}),
        ([("video[id]", "video_1")], {"video": {"id": "video_1"}}),
        ([("characters[][id]", "c1"), ("characters[][id]", "c2")], {"characters": [{"id": "c1"}, {"id": "c2"}]}),
        (
            [("metadata[watermark]", "true"), ("metadata[duration]", "10")],
            {"metadata": {"watermark": "true", "duration": "10"}},
        ),
        (
            [("metadata[nested][y]", "1"), ("metadata[arr][]", "a"), ("metadata[arr][]", "b")],
            {"metadata": {"nested": {"y": "1"}, "arr": ["a", "b"]}},
        ),
        ([("a[][k]", "1"), ("a[][j]", "2"), ("a[][k]", "3")], {"a": [{"k": "1", "j": "2"}, {"k": "3"}]}),
    ],
)
def test_bracket_fields_nest_like_the_sdks_encode_them(pairs, expected) -> None:
    assert nest(pairs) == expected


@pytest.mark.parametrize("name", ["a[b", "a]b", "[x]", "a[b]c", ""])
def test_malformed_names_are_400(name) -> None:
    with pytest.raises(InvalidRequest):
        nest([(name, "v")])


def test_mixing_types_is_400() -> None:
    with pytest.raises(InvalidRequest):
        nest([("a[b]", "1"), ("a[]", "2")])
