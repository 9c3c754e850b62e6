"""Prompt features: shapes, flags, and robustness on junk input."""

from __future__ import annotations

import time

import pytest

from policies.features import extract_context, prompt_features


def _user(content: object) -> list[dict[str, object]]:
    return [{"role": "user", "content": content}]


ARC = ("Which gas do plants take in?\nA) oxygen\nB) carbon dioxide\nC) helium\nD) neon\n"
       'Print only a single choice from "A" or "B" or "C" or "D". Answer:')
WINO = ("The trophy would not fit in the suitcase because the _ was too big.\n"
        "A) trophy\nB) suitcase\nAnswer:")
MBPP = "Write a function to find the shared elements from the given two lists."


@pytest.mark.parametrize(
    ("content", "key"),
    [
        (ARC, "choice"),
        (WINO, "choice2"),
        ("Sam thanked Ana because _ had helped.", "choice2"),
        (MBPP, "code"),
        ("```py\nprint(1)\n```\nwhy does this fail?", "code"),
        ("Find the degree of Q(sqrt(2)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:", "choice"),
        ("Janet has 16 eggs and eats 3. How many are left?", "math"),
        ("What is 12 * 7?", "math"),
        ("Tell me a story about a dragon.", "chat"),
        ("\u0420\u0430\u0441\u0441\u043a\u0430\u0436\u0438 \u043c\u043d\u0435 " * 5, "chat+intl"),
        ([{"type": "text", "text": MBPP}, {"type": "image_url", "image_url": {}}], "code"),
        ("x" * 20000, "chat+long"),
    ],
)
def test_shapes(content: object, key: str) -> None:
    assert extract_context(_user(content)) == key


def test_flags_and_last_user_message() -> None:
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": MBPP},
        {"role": "assistant", "content": "def f(): ..."},
        {"role": "user", "content": "Now tell me a joke."},
    ]
    assert extract_context(messages, tools=True, json_mode=True) == "chat+tools+json"
    assert prompt_features(messages).shape == "chat"


@pytest.mark.parametrize(
    "junk",
    [None, 5, "just a string", b"bytes", {}, [None, 3, "x"], [{"role": 7, "content": 3.5}],
     [{"content": [None, 1, {"text": 4}, {"nested": {"deep": []}}, "part"]}],
     [{"role": "user", "content": {"text": "dict"}}], [{"role": "user"}], []],
)
def test_junk_never_raises(junk: object) -> None:
    assert extract_context(junk).startswith("chat")


def _seconds(messages: list[dict[str, object]]) -> float:
    start = time.perf_counter()
    for _ in range(50):
        extract_context(messages)
    return time.perf_counter() - start


def test_huge_prompts_cost_no_more_than_typical_ones() -> None:
    """The scan is capped: a 1000x longer prompt costs about the same (a same-run ratio;
    the best of interleaved rounds, so a busy machine slows both sides alike)."""
    typical_messages = _user("Solve 1 + 1. " * 200)
    huge_messages = _user("Solve 1 + 1. " * 200_000)
    rounds = [(_seconds(typical_messages), _seconds(huge_messages)) for _ in range(7)]
    typical = min(t for t, _ in rounds)
    huge = min(h for _, h in rounds)
    assert huge < 5 * typical
