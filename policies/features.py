"""Cheap prompt features reduced to a small context key (runs on the request path).

The key is ``<shape>`` plus optional ``+tools``, ``+json``, ``+long``, ``+intl`` flags.
Shapes, first match wins, read from the last user message (its first SCAN_CHARS
characters, and the last SCAN_TAIL_CHARS of a longer one, where options sit):

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

SCAN_CHARS = 2000
SCAN_TAIL_CHARS = 500
LONG_CHARS = 12000
NON_ASCII_SHARE = 0.3

_OPTION = re.compile(r"^[ \t]*\(?([A-H])[).:][ \t]|^[ \t]*\(?([a-h])\)[ \t]", re.MULTILINE)
_INLINE_OPTION = re.compile(r"\(([A-H])\)[ \t]")
_BLANK = re.compile(r"(?:^|\s)_{1,4}(?=[\s.,;:!?']|$)")
_CODE_MARKERS = (
    "```", "def ", "function to", "function that", "a function", "a program", "program to",
    "a script", "script to", "#include", "import ", "return ", "python", "javascript",
    "typescript", "golang", "rust ", "java ", "sql", "regex", "bash", "code",
)
_MATH = re.compile(r"\d ?[-+*/^=\u00d7\u00f7] ?\d|\\frac|\\sqrt|\$\d")
_MATH_MARKERS = (
    "solve", "equation", "calculate", "integral", "derivative", "how many", "how much",
    "sum of", "product of", "percent",
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
    prompt = _scanned(_last_user_text(texts))
    return PromptFeatures(
        shape=prompt_shape(prompt),
        tools=tools,
        json_mode=json_mode,
        long=sum(len(text) for _, text in texts) > LONG_CHARS,
        intl=_mostly_non_ascii(prompt),
    )


def prompt_shape(text: str) -> str:
    """The shape name of one prompt text."""
    options = _option_count(text)
    if options == 2 or (options < 2 and "_" in text and _BLANK.search(text)):
        return "choice2"
    if options >= 3:
        return "choice"
    lower = text.lower()
    if any(marker in lower for marker in _CODE_MARKERS):
        return "code"
    if any(marker in lower for marker in _MATH_MARKERS) or _MATH.search(text):
        return "math"
    return "chat"


def _option_count(text: str) -> int:
    """How many distinct option letters ("A)", "b)", "C.", "(D)") the text lists."""
    letters = {a or b for a, b in _OPTION.findall(text)}
    if len(letters) < 2 and "(" in text:
        letters |= set(_INLINE_OPTION.findall(text))
    return len({letter.upper() for letter in letters})


def _scanned(text: str) -> str:
    if len(text) <= SCAN_CHARS + SCAN_TAIL_CHARS:
        return text
    return text[: SCAN_CHARS - SCAN_TAIL_CHARS] + "\n" + text[-SCAN_TAIL_CHARS:]


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
