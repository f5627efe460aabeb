"""One way to fold text for comparing it: the firewall's words, probe keywords and fact keys all agree.

Folding is NFKD with the accents dropped, casefolded, the Latin letters NFKD does not decompose mapped
to their base letters ("Tromsø" -> "tromso", "Łódź" -> "lodz") and apostrophes dropped ("O'Brien" ->
"obrien", "don't" -> "dont"), so "Tromso" typed without the accent matches "Tromsø".
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Latin letters NFKD does not decompose into a base letter + accent.
_UNDECOMPOSED = str.maketrans({"ø": "o", "đ": "d", "ł": "l", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th"})
_APOSTROPHES = re.compile(r"['’‘`´]")
_WORD = re.compile(r"[^\W_]+")
_NUMBER_SEP = re.compile(r"(?<=\d)[.,](?=\d)")
_ORDINAL = re.compile(r"(\d)(?:st|nd|rd|th)\b")
_NON_WORD = re.compile(r"[^\w]+")
_ARTICLES = re.compile(r"^(?:(?:a|an|the) )+")


@functools.lru_cache(maxsize=1 << 16)
def fold(text: str) -> str:
    """text casefolded, without accents or apostrophes; every other character kept."""
    s = text
    if not s.isascii():
        s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    s = s.casefold()
    if not s.isascii():
        s = s.translate(_UNDECOMPOSED)
    return _APOSTROPHES.sub("", s)


def word_tokens(text: str) -> list[str]:
    """The folded words of text (runs of letters and digits)."""
    return _WORD.findall(fold(text))


def match_form(text: str) -> str:
    """Folded words joined by single spaces, "2.5" / "1,000" kept as one number (what probe keywords match)."""
    return " ".join(_WORD.findall(_NUMBER_SEP.sub("", fold(text))))


_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
    "seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = {**{w: i for i, w in enumerate(_UNITS)}, **{w: 20 + 10 * i for i, w in enumerate(_TENS)}}


def number_digits(text: str) -> str | None:
    """A whole number under 100 written in words, as digits ('eleven' -> '11', 'forty-two' -> '42'); None when
    text is anything else."""
    words = _NON_WORD.sub(" ", fold(text)).split()
    if len(words) == 1 and words[0] in NUMBER_WORDS:
        return str(NUMBER_WORDS[words[0]])
    if len(words) == 2 and words[0] in _TENS and words[1] in _UNITS[1:10]:
        return str(NUMBER_WORDS[words[0]] + NUMBER_WORDS[words[1]])
    return None


@functools.lru_cache(maxsize=1 << 16)
def normalize_value(text: str) -> str:
    """A value's key form: folded, punctuation as single spaces, no leading articles or ordinal suffixes; a
    number in words as digits (so 'eleven' and '11' are one value)."""
    s = _NON_WORD.sub(" ", _ORDINAL.sub(r"\1", fold(text)))
    s = _ARTICLES.sub("", s.strip())
    return number_digits(s) or s
