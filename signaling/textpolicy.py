"""The character policy of every human-entered text: names, organisations, e-mail addresses, terms, chat.

One policy for both wires: the HTTP API's schemas (server/schemas.py) and the room's payloads
(signaling/payloads.py) call ``checked_text``. It refuses what can make text display as something it is
not (docs/threat-model.md, "Display spoofing"):

- control characters (Unicode category Cc) other than newline and tab in multi-line text, surrogates
  and private-use characters, and the line and paragraph separators;
- every bidirectional control (embeddings, overrides, isolates and the implicit marks): with them a
  name can show as another ("Mediator") or a label can read reversed;
- every other invisible formatting character (category Cf: zero-width space, word joiner, byte-order
  mark, soft hyphen, tag characters, ...) and the invisible fillers, except the zero-width joiner and
  non-joiner between two visible characters, which emoji sequences and several scripts need.

Text is NFC-normalised first. What passes is still shown isolated on every page (``dir="auto"``), so
right-to-left text cannot reorder what surrounds it.
"""

from __future__ import annotations

import unicodedata

# Bidirectional controls: LRE RLE PDF LRO RLO, LRI RLI FSI PDI, LRM RLM ALM.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Zero-width joiner and non-joiner: allowed only between two visible characters.
JOINERS = frozenset("\u200c\u200d")
# Letters (category Lo) that render as nothing: Hangul fillers and the Braille blank.
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_SEPARATORS = frozenset("\u2028\u2029")


class TextRefused(ValueError):
    """The text holds a character the policy refuses; the message names it."""


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"


def _visible(char: str) -> bool:
    return not (char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp")
                or char in INVISIBLE_LETTERS)


def checked_text(value: str, *, multiline: bool) -> str:
    """``value`` in NFC, or ``TextRefused`` naming the first character the policy refuses."""
    value = unicodedata.normalize("NFC", value)
    allowed_controls = "\n\t" if multiline else ""
    for index, char in enumerate(value):
        category = unicodedata.category(char)
        if char in BIDI_CONTROLS:
            raise TextRefused(f"contains a bidirectional control character {_describe(char)}")
        if char in JOINERS:
            before = value[index - 1] if index > 0 else " "
            after = value[index + 1] if index + 1 < len(value) else " "
            if _visible(before) and _visible(after):
                continue
            raise TextRefused(f"contains an invisible formatting character {_describe(char)} "
                              "outside a joining sequence")
        if category == "Cf" or char in INVISIBLE_LETTERS:
            raise TextRefused(f"contains an invisible formatting character {_describe(char)}")
        if (category == "Cc" and char not in allowed_controls) or category in ("Cs", "Co") or char in _SEPARATORS:
            raise TextRefused(f"contains a control character {_describe(char)}")
    return value
