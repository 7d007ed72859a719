"""Chinese text normalisation shared by speech recognition and FAQ matching (a leaf package)."""

from zh_text.case_number import CaseNumber, parse_case_number
from zh_text.normalize import (
    normalize_for_matching,
    numerals_to_digits,
    strip_fillers,
    to_halfwidth,
    to_simplified,
)

__all__ = [
    "CaseNumber",
    "normalize_for_matching",
    "numerals_to_digits",
    "parse_case_number",
    "strip_fillers",
    "to_halfwidth",
    "to_simplified",
]
