"""Keyed pseudonyms for tax codes, and what a tax code tells before it is dropped.

Tax codes of sole proprietors are personal data. At load time the raw layer
derives what later steps need (legal form from the code's shape, owner born
abroad from the birthplace code, whether the check character is right), then
replaces the code by ``firm_id``: the hex HMAC-SHA256 of the normalised code
(stripped, upper case) under a secret key. The same key gives the same firm the
same ``firm_id`` in the survey and in AIDA; without the key nobody can go back.

The key comes from ``OFFSHORING_PSEUDONYM_KEY`` (the key itself) or
``OFFSHORING_PSEUDONYM_KEY_FILE`` (a file outside the repository holding it; its
bytes, trailing whitespace removed). A key is used as the bytes written (a hex
string counts as text, not decoded) and must have at least 16 of them. Only the
synthetic demo, asked for explicitly (``offshoring demo``, ``offshoring run
--synthetic``, ``OFFSHORING_SYNTHETIC=1``), uses the public `DEMO_KEY`; it is never
inferred from a file in the raw folder, so real data is never pseudonymised with a
key everyone knows.

The derivations here are vectorised polars versions of `offshoring.taxcode`
(which stays the reference: tests compare the two).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import duckdb
import polars as pl

from offshoring import settings

#: public key for synthetic data only (documented, so it protects nothing)
DEMO_KEY = b"offshoring-synthetic-demo-key-not-a-secret"
MIN_KEY_BYTES = 16


class PseudonymKeyError(RuntimeError):
    """No usable pseudonymisation key."""


def _inside_repository(path: Path) -> bool:
    try:
        path.resolve().relative_to(settings.base_dir().resolve() if settings.IN_SOURCE_TREE
                                   else settings.PACKAGE_DIR.resolve())
        return True
    except ValueError:
        return False


def _key_from_value(value: str) -> bytes:
    key = value.encode("utf-8")
    # spaces around the key are not key: a value of blanks would pass the length rule here
    # while the same blanks in a key file are refused (the file is stripped). The value is
    # used as given (stripping it would change every pseudonym of an existing warehouse).
    if len(key.strip()) < MIN_KEY_BYTES:
        raise PseudonymKeyError(
            f"{settings.ENV_PSEUDONYM_KEY} is shorter than {MIN_KEY_BYTES} bytes (spaces around it not "
            f"counted); use a long random key"
        )
    return key


def _key_from_file(key_file: str) -> bytes:
    path = Path(key_file).expanduser()
    if _inside_repository(path):
        raise PseudonymKeyError(
            f"{settings.ENV_PSEUDONYM_KEY_FILE} points inside the repository ({path}); keep the key "
            f"file outside it so it is never committed"
        )
    if not path.is_file():
        raise PseudonymKeyError(f"{settings.ENV_PSEUDONYM_KEY_FILE}: no such file {path}")
    key = path.read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyError(f"the key in {path} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def resolve_key(synthetic: bool = False) -> bytes:
    """The pseudonymisation key: the public demo key in synthetic mode, else the user's.

    Never returns or logs anything derived from the key besides the key itself.
    """
    if synthetic:
        return DEMO_KEY
    value = os.environ.get(settings.ENV_PSEUDONYM_KEY)
    key_file = os.environ.get(settings.ENV_PSEUDONYM_KEY_FILE)
    if value and key_file:
        # both set: the plain value used to win without a word, even when the file held the
        # key the warehouse was built with
        key, from_file = _key_from_value(value), _key_from_file(key_file)
        if key != from_file:
            spaces = (f" (they differ only in the spaces around the value of {settings.ENV_PSEUDONYM_KEY}, "
                      f"which is used as given, while the file's key is stripped)"
                      if key.strip() == from_file else "")
            raise PseudonymKeyError(
                f"{settings.ENV_PSEUDONYM_KEY} and {settings.ENV_PSEUDONYM_KEY_FILE} are both set, to different "
                f"keys{spaces}; unset the one that is not the key this warehouse was built with")
        return key
    if value:
        return _key_from_value(value)
    if key_file:
        return _key_from_file(key_file)
    raise PseudonymKeyError(
        "No pseudonymisation key: set OFFSHORING_PSEUDONYM_KEY to a long random secret, or "
        "OFFSHORING_PSEUDONYM_KEY_FILE to a file outside the repository holding one (e.g. "
        "`python -c 'import secrets; print(secrets.token_hex(32))' > ~/.offshoring_key`). "
        "Only the synthetic demo (`offshoring demo`) does without."
    )


def normalise_expr(col: str = "tax_code") -> pl.Expr:
    return pl.col(col).str.strip_chars().str.to_uppercase()


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The HMAC-SHA256 inner and outer pads of `key` (RFC 2104)."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sql(column: str, key: bytes) -> tuple[str, list[bytes]]:
    """A DuckDB expression computing ``firm_id`` from a text column of normalised codes,
    and its parameters (the key's pads: bound as parameters, never put in SQL text).

    HMAC-SHA256 by RFC 2104 from DuckDB's vectorised ``sha256``: several times
    faster than a Python loop, and usable inside the loading INSERT itself.
    """
    if not isinstance(key, (bytes, bytearray)) or len(key) == 0:
        raise PseudonymKeyError("the pseudonymisation key must be non-empty bytes")
    inner, outer = _hmac_pads(bytes(key))
    col = f'upper(trim("{column}"))'
    return f"sha256(?::BLOB || unhex(sha256(?::BLOB || encode({col}))))", [outer, inner]


def pseudonymise(codes: pl.Series, key: bytes) -> pl.Series:
    """``firm_id`` for each code: hex HMAC-SHA256(key, normalised code); null stays null.

    Computed by `hmac_sql` over the distinct codes in a private in-memory
    database. `firm_id` (one code, Python's `hmac`) gives the same value.
    """
    expr, params = hmac_sql("code", key)
    norm = codes.cast(pl.String).str.strip_chars().str.to_uppercase().alias("code")
    uniq = norm.drop_nulls().unique().to_frame()
    con = duckdb.connect(":memory:")
    try:
        con.register("codes", uniq.to_arrow())
        mapping = con.sql(f"SELECT code, {expr} AS firm_id FROM codes", params=params).pl()
    finally:
        con.close()
    return norm.to_frame().join(mapping, on="code", how="left", maintain_order="left")["firm_id"]


def firm_id(code: str, key: bytes) -> str:
    """The pseudonym of one code (for tests and one-off look-ups by someone holding the key)."""
    return hmac.digest(key, code.strip().upper().encode("utf-8"), "sha256").hex()


# --- the check characters of `offshoring.taxcode`, as polars expressions -----------------

_ODD_VALUES = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21]
_ODD = {
    **{str(d): v for d, v in enumerate(_ODD_VALUES)},
    **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
               [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16,
                10, 22, 25, 24, 23])),
}
_EVEN = {**{str(d): d for d in range(10)}, **{chr(ord("A") + i): i for i in range(26)}}
_COMPANY_RE = r"^[0-9]{11}$"
_D = "[0-9LMNPQRSTUV]"
_PERSONAL_RE = rf"^[A-Z]{{6}}{_D}{{2}}[ABCDEHLMPRST]{_D}{{2}}[A-Z]{_D}{{3}}[A-Z]$"


def _char(code: pl.Expr, i: int) -> pl.Expr:
    return code.str.slice(i, 1)


def _company_check_ok(n: pl.Expr) -> pl.Expr:
    """Luhn-style check digit of an 11-digit code held as an integer `n` (a column)."""
    total = pl.lit(0, dtype=pl.Int64)
    for i in range(10):
        d = (n // 10 ** (10 - i)) % 10
        if i % 2 == 1:
            d = d * 2 - pl.when(d >= 5).then(9).otherwise(0)
        total = total + d
    return (n % 10) == (10 - total % 10) % 10


def _personal_check_ok(code: pl.Expr) -> pl.Expr:
    total = pl.lit(0, dtype=pl.Int32)
    for i in range(15):
        table = _ODD if i % 2 == 0 else _EVEN
        total = total + _char(code, i).replace_strict(table, default=0, return_dtype=pl.Int32)
    return _char(code, 15).replace_strict(_EVEN, default=-1, return_dtype=pl.Int32) == total % 26


def tax_code_fields(frame: pl.DataFrame, col: str = "tax_code") -> pl.DataFrame:
    """Add ``legal_form``, ``foreign_owner`` (0/1) and ``tax_code_check_ok`` from the code.

    ``legal_form`` is ``company`` for 11 digits, ``sole_proprietor`` for a personal
    code (null for neither); ``foreign_owner`` is 1 when a personal code's
    birthplace is a foreign country (``Z...``; position 12 is always a letter,
    omocodia or not). Vectorised: integer arithmetic for company codes, the
    character tables only on the (few) personal codes.
    """
    codes = frame.select(normalise_expr(col).alias("c"))
    shapes = codes.with_row_index("i").with_columns(
        pl.col("c").str.contains(_COMPANY_RE).fill_null(False).alias("company"),
        pl.col("c").str.contains(_PERSONAL_RE).fill_null(False).alias("personal"),
    )
    comp = shapes.filter("company").with_columns(pl.col("c").cast(pl.Int64).alias("n"))
    comp = comp.select("i", _company_check_ok(pl.col("n")).alias("ok"))
    pers = shapes.filter("personal").select(
        "i", _personal_check_ok(pl.col("c")).alias("ok"), (_char(pl.col("c"), 11) == "Z").alias("abroad"),
    )
    ok = pl.Series("tax_code_check_ok", [False] * frame.height, dtype=pl.Boolean)
    abroad = pl.Series("foreign_owner", [False] * frame.height, dtype=pl.Boolean)
    if comp.height:
        ok = ok.scatter(comp["i"], comp["ok"])
    if pers.height:
        ok = ok.scatter(pers["i"], pers["ok"])
        abroad = abroad.scatter(pers["i"], pers["abroad"])
    legal = shapes.select(
        pl.when(pl.col("company")).then(pl.lit("company")).when(pl.col("personal"))
        .then(pl.lit("sole_proprietor")).otherwise(None).alias("legal_form")
    )["legal_form"]
    return frame.with_columns(legal, abroad.cast(pl.Int8), ok)
