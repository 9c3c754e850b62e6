"""Cheap prompt features reduced to a small context key (runs on the request path).

The key is ``<shape>`` plus optional ``+tools``, ``+json``, ``+long``, ``+intl`` flags.
Shapes, first match wins, read from the last user message (first SCAN_CHARS chars):

- ``choice2``: two lettered options ("A) ...", "(B) ...", "C. ...") or a "_" blank to fill
- ``choice``: three or more lettered options
- ``code``: code fences, code-like syntax or a request to write a function/program
- ``math``: arithmetic, equations or quantity questions ("how many", numbers + operators)
- ``chat``: anything else

``+long`` marks conversations over LONG_CHARS characters in all; ``+intl`` a mostly
non-ASCII prompt. Junk (None, numbers, odd parts) is skipped, never raised on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SCAN_CHARS = 4000
LONG_CHARS = 12000
NON_ASCII_SHARE = 0.3

_OPTION = re.compile(r"(?:^|\n|\s\()[ \t]*\(?([A-Ha-h])[).:][ \t]+\S")
_BLANK = re.compile(r"(?:^|\s)_{1,4}(?=[\s.,;:!?']|$)")
_CODE = re.compile(
    r"```|\bdef \w+\(|\bfunction\b|\bclass \w+|\breturn\b|#include|\bimport \w+|"
    r"\b(?:python|javascript|typescript|java|rust|golang|sql|regex|bash)\b|"
    r"\b(?:write|implement|create)\s+(?:a|an)\s+(?:\w+\s+)?(?:program|script|method|function)",
    re.IGNORECASE,
)
_MATH = re.compile(
    r"\d\s*[-+*/^=\u00d7\u00f7]\s*\d|\\frac|\\sqrt|\$\d|\b(?:solve|equation|calculate|integral|"
    r"derivative|how (?:many|much)|sum of|product of|percent)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class PromptFeatures:
    """What the extractor saw; ``key`` is the context cell name."""

    shape: str
    tools: bool = False
    json_mode: bool = False
    long: bool = False
    intl: bool = False

    @property
    def key(self) -> str:
        flags = (("tools", self.tools), ("json", self.json_mode), ("long", self.long))
        named = [name for name, on in (*flags, ("intl", self.intl)) if on]
        return "+".join((self.shape, *named))


def extract_context(messages: object, *, tools: bool = False, json_mode: bool = False) -> str:
    """The context key of a chat ``messages`` list (see the module docstring)."""
    return prompt_features(messages, tools=tools, json_mode=json_mode).key


def prompt_features(
    messages: object, *, tools: bool = False, json_mode: bool = False
) -> PromptFeatures:
    """The features of a chat ``messages`` list; never raises on junk."""
    texts = _message_texts(messages)
    prompt = _last_user_text(texts)[:SCAN_CHARS]
    return PromptFeatures(
        shape=prompt_shape(prompt),
        tools=tools,
        json_mode=json_mode,
        long=sum(len(text) for _, text in texts) > LONG_CHARS,
        intl=_mostly_non_ascii(prompt),
    )


def prompt_shape(text: str) -> str:
    """The shape name of one prompt text."""
    options = len({letter.upper() for letter in _OPTION.findall(text)})
    if options == 2 or (options < 2 and _BLANK.search(text)):
        return "choice2"
    if options >= 3:
        return "choice"
    if _CODE.search(text):
        return "code"
    return "math" if _MATH.search(text) else "chat"


def _message_texts(messages: object) -> list[tuple[str, str]]:
    """(role, text) of each well-formed enough message."""
    if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
        return []
    found = []
    for message in messages:
        if isinstance(message, Mapping):
            role = message.get("role")
            found.append((role if isinstance(role, str) else "", _content_text(message)))
    return found


def _content_text(message: Mapping[object, object]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, bytes):
        parts = (_part_text(part) for part in content[:16])
        return "\n".join(part for part in parts if part)
    return ""


def _part_text(part: object) -> str:
    if isinstance(part, str):
        return part
    text = part.get("text") if isinstance(part, Mapping) else None
    return text if isinstance(text, str) else ""


def _last_user_text(texts: Sequence[tuple[str, str]]) -> str:
    for role, text in reversed(texts):
        if role == "user" and text:
            return text
    return texts[-1][1] if texts else ""


def _mostly_non_ascii(text: str) -> bool:
    if not text or text.isascii():
        return False
    sample = text[:500]
    return sum(1 for ch in sample if ord(ch) > 127) > NON_ASCII_SHARE * len(sample)
