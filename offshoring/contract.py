"""The data contract's refusals in plain words: the rule ids, `Failure` and `ContractError`.

Kept apart from `offshoring.validation` (the pandera schemas that find the failures) so that
what only refuses by name (finding the raw folder's files, the command line's pre-flight)
imports neither pandera nor polars. `offshoring.validation` re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the warehouse schema of the raw tables and of ``raw.load_log``
RAW_SCHEMA = "raw"

#: rule id -> what it means, used in messages and in the load log
RULES: dict[str, str] = {
    "missing_columns": "required column missing after the column map",
    "duplicate_columns": "two headers map to the same column",
    "unreadable_file": "the file cannot be read in any accepted format",
    "ragged_row": "a row has a different number of fields than the header",
    "unparseable_number": "not a number",
    "unparseable_integer": "not a whole number",
    "unparseable_date": "not a date (dd/mm/yyyy with the year in four digits, or yyyy-mm-dd)",
    "missing_value": "empty cell in a column that must be filled",
    "year_mismatch": "year differs from the file's year",
    "duplicate_filing": "the same firm-year filed twice with the same filing date",
    "duplicate_key": "the same key appears on more than one row",
    "negative_value": "negative value where only zero or more is possible",
    "share_out_of_range": "share outside 0-100 percent",
    "flag_not_binary": "flag other than 0 or 1",
    "unknown_market_area": "market area not one of local, provincial, regional, national, international",
    "malformed_tax_code": "malformed tax code (neither 11 digits nor a 16-character codice fiscale)",
    "malformed_municipality_code": "malformed municipality code (6 digits expected)",
    "malformed_ateco": "malformed ATECO code (2 to 6 digits, dots allowed)",
    "malformed_province": "malformed province (two-letter sigla expected)",
    "missing_municipality": "return without a municipality code",
    "unplaceable_municipality": "municipality code in no ISTAT layout, whose first three digits are no province of the return's year",
    "unlisted_municipality": "municipality code not in the municipality list in use",
    "unknown_province": "province sigla neither in the municipality list in use nor an abolished province",
    "filing_before_year": "filing date before 1 January of the return's fiscal year",
    "malformed_country": "malformed country (ISO 3166-1 alpha-2 code expected)",
    "country_not_foreign": "subsidiary in Italy, but the file lists foreign participations",
    "year_order": "last_year before first_year",
    "unknown_size_class": "size class not one of 0-9, 10-49, 50-249, 250+",
    "malformed_division": "malformed ATECO division (2 digits expected)",
    "wrong_type": "column of the wrong type",
    "invalid_list": "the municipality list is not usable",
    "ambiguous_number": "number that reads two ways",
    "duplicate_delivery": "more than one delivery file for the same input",
    "future_year": "fiscal year after the current one",
    "outside_raw_folder": "file outside the raw folder",
    "smaller_delivery": "the delivery is much smaller than what it replaces or its neighbouring years",
}

MAX_ROWS_SHOWN = 5


@dataclass(frozen=True)
class Failure:
    """One broken rule in one column, with the rows that break it."""

    rule: str
    column: str | None
    rows: tuple[int, ...] = ()
    n_rows: int = 0
    header: str | None = None  # the delivery's own header, when the column map renamed it
    detail: str | None = None  # extra words (never a cell value of firm data; a province sigla may be named)

    def describe(self, row_label: str = "row") -> str:
        text = RULES.get(self.rule, self.rule)
        if self.detail:
            text = f"{text} ({self.detail})"
        where = ""
        if self.column and ", " in self.column:
            where = f"columns ({self.column}): "
        elif self.column:
            where = f"column '{self.column}'"
            if self.header and self.header != self.column:
                where += f" (header '{self.header}')"
            where += ": "
        rows = ""
        if self.n_rows:
            shown = ", ".join(str(r) for r in self.rows[:MAX_ROWS_SHOWN])
            more = self.n_rows - min(len(self.rows), MAX_ROWS_SHOWN)
            plural = "s" if self.n_rows > 1 else ""
            rows = f" — {self.n_rows} {row_label}{plural}: {shown}" + (f" and {more} more" if more > 0 else "")
        return f"[{self.rule}] {where}{text}{rows}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "column": self.column,
            "n_rows": self.n_rows,
            "first_rows": list(self.rows[:MAX_ROWS_SHOWN]),
            "description": RULES.get(self.rule, self.rule),
            "detail": self.detail,
        }


class ContractError(ValueError):
    """A raw file breaks the data contract; nothing of it was loaded.

    The message names the file, the rule, the column and the rows (1-based data
    rows, the header excluded; for a file-level problem, no rows). It never
    contains a cell's value.
    """

    def __init__(self, file: str | Path, failures: Sequence[Failure], *, n_rows_rejected: int | None = None,
                 row_label: str = "data row", note: str | None = None):
        self.file = str(file)
        self.failures = list(failures)
        rows = {r for f in self.failures for r in f.rows}
        counted = sum(f.n_rows for f in self.failures)
        self.n_rows_rejected = n_rows_rejected if n_rows_rejected is not None else (len(rows) if rows else counted)
        self.row_label = row_label
        head = f"{self.file}: rejected, nothing loaded"
        if self.n_rows_rejected:
            many = self.n_rows_rejected > 1
            head += f"; {self.n_rows_rejected} {row_label}{'s' if many else ''} break{'' if many else 's'} the contract"
            head += f" ({row_label}s are numbered from 1, header excluded)"
        lines = [head] + [f"  - {f.describe(row_label)}" for f in self.failures]
        if note:
            lines.append(f"  {note}")
        super().__init__("\n".join(lines))

    @property
    def reasons(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.failures]
