"""Which source columns hold direct identifiers, judged by their header (and, for suggestions, values).

Used twice: a mapping that feeds such a column into a field that leaves the partner is refused,
and `accord mapping suggest` never proposes one silently. Hand-written because no library
classifies case-management headers; the patterns are deliberately broad (protect more).
"""

from __future__ import annotations

import re

# Header words (after splitting camelCase, snake_case and punctuation) that name a direct identifier.
_IDENTIFIER_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("name", re.compile(r"\b(first|given|family|last|sur|middle|full|maiden|father'?s?|mother'?s?)\s*names?\b|"
                        r"\bnames?\b|\bnombre\b|\bapellidos?\b|\bnom\b|\bprenom\b")),
    ("phone", re.compile(r"\b(phone|mobile|cell|telephone|tel|whatsapp|telefono)\b")),
    ("email", re.compile(r"\be-?mail\b|\bcorreo\b")),
    ("document number", re.compile(r"\b(passport|id\s*(number|no|card)|national\s*id|document\s*(number|no)|"
                                   r"identity\s*number|nin|ssn|cedula|dni)\b")),
    ("address", re.compile(r"\b(address|street|postal\s*code|zip|gps|latitude|longitude|geolocation)\b")),
    ("date of birth", re.compile(r"\b(date\s*of\s*birth|dob|birth\s*date|birthdate|fecha\s*de\s*nacimiento)\b")),
)

_EMAIL_VALUE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.IGNORECASE)
_PHONE_VALUE = re.compile(r"^\+?[\d ()\-.]{9,}$")


def _words(header: str) -> str:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", header)
    return re.sub(r"[^0-9a-zA-Z']+", " ", spaced).strip().lower()


def identifier_kind(header: str, label: str | None = None) -> str | None:
    """The kind of direct identifier a column's header (or form label) names, or None."""
    for text in (header, label or ""):
        words = _words(text)
        for kind, pattern in _IDENTIFIER_PATTERNS:
            if pattern.search(words):
                return kind
    return None


def identifier_values(values: list[str]) -> str | None:
    """'email' or 'phone' when most non-empty sample values look like one; else None."""
    sample = [v.strip() for v in values if v and v.strip()]
    if not sample:
        return None
    for kind, pattern in (("email", _EMAIL_VALUE), ("phone", _PHONE_VALUE)):
        if sum(1 for v in sample if pattern.match(v)) >= 0.8 * len(sample):
            return kind
    return None
