"""A translation task that needs no download: English number words to digits.

"three hundred forty-two thousand five hundred six" -> "342506". Each digit comes from one or two
source words, so a trained model's cross-attention shows a readable alignment.
"""

from __future__ import annotations

import random

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _below_thousand(n: int) -> list[str]:
    words = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens] + (f"-{_ONES[ones]}" if ones else ""))
    elif rest:
        words.append(_ONES[rest])
    return words


def number_to_words(n: int) -> str:
    """0 <= n < 10**9 in words: 342506 -> 'three hundred forty-two thousand five hundred six'."""
    if not 0 <= n < 10**9:
        raise ValueError(f"{n} is outside 0..999,999,999")
    if n == 0:
        return "zero"
    words = []
    for scale, name in ((10**6, "million"), (10**3, "thousand"), (1, "")):
        group, n = divmod(n, scale)
        if group:
            words += _below_thousand(group) + ([name] if name else [])
    return " ".join(words)


def number_pairs(count: int, max_number: int, seed: int) -> list[tuple[str, str]]:
    """`count` distinct numbers in 0..max_number, as (words, digits) pairs, in a seeded order."""
    if count > max_number + 1:
        raise ValueError(f"count={count} distinct numbers need max_number >= {count - 1}")
    numbers = random.Random(seed).sample(range(max_number + 1), count)
    return [(number_to_words(n), str(n)) for n in numbers]
