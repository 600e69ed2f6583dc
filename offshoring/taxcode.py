"""Italian tax codes: shapes, check characters, what a personal code tells.

Companies carry an 11-digit code (partita IVA form) whose last digit is a
Luhn-style check digit; sole proprietors carry the owner's 16-character codice
fiscale (surname, name, birth date, birthplace, check letter). A birthplace code
beginning with ``Z`` is a foreign country (``Z210`` is China).

Used at load time to derive legal form and foreign birth before the code is
replaced by a pseudonym, and by the synthetic-data generator to write valid codes.
"""

from __future__ import annotations

import re

_ODD = {
    **dict(zip("0123456789", [1, 0, 5, 7, 9, 13, 15, 17, 19, 21])),
    **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
               [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16,
                10, 22, 25, 24, 23])),
}
_EVEN = {
    **{str(d): d for d in range(10)},
    **{chr(ord("A") + i): i for i in range(26)},
}
MONTHS = "ABCDEHLMPRST"
# digits of a personal code may be replaced by these letters (omocodia)
_OMO = "LMNPQRSTUV"
_D = f"[0-9{_OMO}]"

PERSONAL_RE = re.compile(
    rf"^[A-Z]{{6}}{_D}{{2}}[{MONTHS}]{_D}{{2}}[A-Z]{_D}{{3}}[A-Z]$"
)
COMPANY_RE = re.compile(r"^[0-9]{11}$")


def normalise(code: str) -> str:
    return code.strip().upper()


def is_company_code(code: str) -> bool:
    return bool(COMPANY_RE.match(code))


def is_personal_code(code: str) -> bool:
    return bool(PERSONAL_RE.match(code))


def is_well_formed(code: str) -> bool:
    return is_company_code(code) or is_personal_code(code)


def personal_check_char(first15: str) -> str:
    if len(first15) != 15:
        raise ValueError("a personal code has 15 characters before its check letter")
    total = 0
    for i, ch in enumerate(first15):
        total += _ODD[ch] if i % 2 == 0 else _EVEN[ch]
    return chr(ord("A") + total % 26)


def company_check_digit(first10: str) -> str:
    if len(first10) != 10 or not first10.isdigit():
        raise ValueError("a company code has 10 digits before its check digit")
    total = 0
    for i, ch in enumerate(first10):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def has_valid_check(code: str) -> bool:
    """Whether the check character matches; False for a malformed code."""
    if is_personal_code(code):
        return personal_check_char(code[:15]) == code[15]
    if is_company_code(code):
        return company_check_digit(code[:10]) == code[10]
    return False


def legal_form(code: str) -> str | None:
    """``company`` for an 11-digit code, ``sole_proprietor`` for a personal one."""
    if is_company_code(code):
        return "company"
    if is_personal_code(code):
        return "sole_proprietor"
    return None


def _undo_omocodia(s: str) -> str:
    return "".join(str(_OMO.index(c)) if c in _OMO else c for c in s)


def birthplace(code: str) -> str | None:
    """Cadastral code of the birthplace (``Z...`` for a foreign country)."""
    if not is_personal_code(code):
        return None
    return code[11] + _undo_omocodia(code[12:15])


def born_abroad(code: str) -> bool | None:
    place = birthplace(code)
    return None if place is None else place.startswith("Z")


def make_company_code(first10: str) -> str:
    return first10 + company_check_digit(first10)


def make_personal_code(surname3: str, name3: str, year: int, month: int, day: int,
                       female: bool, place: str) -> str:
    """A codice fiscale from its parts (letters already extracted, 3 each)."""
    body = (
        surname3.upper() + name3.upper() + f"{year % 100:02d}" + MONTHS[month - 1]
        + f"{day + (40 if female else 0):02d}" + place.upper()
    )
    return body + personal_check_char(body)
