"""The quality heuristic: a table of responses and their scores."""

from __future__ import annotations

import pytest

from policies.quality import QualityInput, QualityWeights, assess_quality, matches_schema

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                   "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city"],
    "additionalProperties": False,
}
SCHEMAS = {"weather": WEATHER}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (QualityInput("Paris is the capital of France."), 1.0),
        (QualityInput(None), 0.0),
        (QualityInput("   \n"), 0.0),
        (QualityInput("The answer is", finish_reason="length"), 0.7),
        (QualityInput("I can't help with that request."), 0.4),
        (QualityInput("I\u2019m unable to do that."), 0.4),
        (QualityInput("As an AI language model, I think..."), 0.4),
        (QualityInput('{"a": 1}', wants_json=True), 1.0),
        (QualityInput('```json\n{"a": 1}\n```', wants_json=True), 1.0),
        (QualityInput("{a: 1", wants_json=True), 0.4),
        (QualityInput("{a: 1", wants_json=True, finish_reason="length"), 0.1),
        (QualityInput("I cannot assist. {", wants_json=True), 0.0),
        (QualityInput(None, tool_calls=(("weather", '{"city": "Oslo"}'),),
                      tool_schemas=SCHEMAS), 1.0),
        (QualityInput(None, tool_calls=(("weather", '{"city": '),), tool_schemas=SCHEMAS), 0.4),
        (QualityInput(None, tool_calls=(("weather", '{"days": 2}'),), tool_schemas=SCHEMAS), 0.4),
        (QualityInput(None, tool_calls=(("nope", "{}"),), tool_schemas=SCHEMAS), 0.4),
        (QualityInput(None, tool_calls=(("nope", "{}"),)), 1.0),
        (QualityInput(None, tool_calls=(("weather", '{"city": "A"}'), ("weather", "[")),
                      tool_schemas=SCHEMAS), 0.7),
    ],
)
def test_quality_table(response: QualityInput, expected: float) -> None:
    assert assess_quality(response) == pytest.approx(expected)


def test_disabled_heuristic_scores_one() -> None:
    assert assess_quality(QualityInput(None), QualityWeights(enabled=False)) == 1.0


def test_custom_penalties() -> None:
    weights = QualityWeights(truncated=0.5, empty=0.8)
    assert assess_quality(QualityInput("x", finish_reason="length"), weights) == 0.5
    assert assess_quality(QualityInput(""), weights) == pytest.approx(0.2)


def test_bad_penalty_raises() -> None:
    with pytest.raises(ValueError, match="refusal"):
        QualityWeights(refusal=1.5)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ({"city": "Oslo", "days": 3, "unit": "c"}, True),
        ({"city": "Oslo", "days": 3.0}, True),
        ({"city": "Oslo", "days": 3.5}, False),
        ({"city": "Oslo", "days": True}, False),
        ({"city": 5}, False),
        ({"city": "Oslo", "unit": "k"}, False),
        ({"city": "Oslo", "extra": 1}, False),
        ([1, 2], False),
    ],
)
def test_schema_subset(value: object, ok: bool) -> None:
    assert matches_schema(value, WEATHER) is ok


def test_schema_arrays_and_type_lists() -> None:
    schema = {"type": "array", "items": {"type": ["number", "null"]}}
    assert matches_schema([1, 2.5, None], schema)
    assert not matches_schema([1, "x"], schema)
