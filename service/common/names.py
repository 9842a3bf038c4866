"""When two person names are the same name."""

from __future__ import annotations

import unicodedata


def name_key(name: str) -> str:
    """The form two names share when they name the same person: Unicode-compatible (NFKC), case-folded, single
    spaces ("Barack  Obama", "barack obama" and "ＢＡＲＡＣＫ ＯＢＡＭＡ" all give "barack obama")."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())
