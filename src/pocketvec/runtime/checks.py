"""The type and range checks live on the ground floor (pocketvec.checks); kept here for old imports."""

from pocketvec.checks import check_number, check_pattern, check_text, number_text

__all__ = ["check_number", "check_pattern", "check_text", "number_text"]
