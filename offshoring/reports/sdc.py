"""Statistical disclosure control for aggregate report cells.

The inputs are confidential tax microdata, so no table cell, map area or bar may
reveal a single firm. Rules work on *cell-level aggregates*: SQL computes, per
cell, the number of contributing firms and, for magnitude cells, the total of the
contributions and the largest single firm's contribution. Firm-level rows never
reach Python.

Primary suppression (per cell)
    * threshold rule: a non-blank cell based on ``0 < n_firms < min_firms`` firms
      is suppressed (a count of zero is published: it reveals no firm);
    * dominance rule, magnitude cells only (sums and means of money amounts,
      headcounts): suppressed when the largest firm holds more than
      ``dominance_share`` of the cell total (``max_contrib / total``; both are
      taken over absolute contributions, a firm's contribution being the sum of
      its firm-years in the cell).

Secondary (complementary) suppression
    A table may carry linear constraints: cells that add up to a published total,
    a margin inside the table or a figure published elsewhere. A suppressed cell
    is *exactly recoverable* when the constraints restricted to the suppressed
    cells pin it down; this is tested exactly, as "the cell's coordinate vanishes
    on the null space of the constraint matrix over the unknowns", which covers a
    cell alone in a row or column with a total and also chains of constraints.
    While some suppressed cell is recoverable, one more cell is suppressed: in a
    constraint where a suppressed cell stands alone (else one sharing a constraint
    with a recoverable cell), the *smallest* unsuppressed numeric member (cells
    that also mend another lone suppression first, then ordinary cells before
    totals, non-zero values before zeros, the lowest absolute value, table order).
    Greedy and deterministic; it minimises the value hidden per step, not globally. It guarantees no exact recovery; it does
    not enforce a protection interval around a dominant magnitude cell (documented
    limitation; Table 1 has no additive margins, the map's only constraint is a
    count total).

`protect` applies the rules and returns a `ProtectedTable`; `assert_safe` re-checks
a table against the rules (a raw `CellTable` or a `ProtectedTable`) and raises
`DisclosureError` naming the first unsafe cell and the rule it breaks. Writers
call `assert_safe` before anything reaches disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

FREQUENCY = "frequency"
MAGNITUDE = "magnitude"
BLANK = "blank"
KINDS = (FREQUENCY, MAGNITUDE, BLANK)

THRESHOLD = "threshold"
DOMINANCE = "dominance"
SECONDARY = "secondary"

CellKey = tuple[str, str]


class DisclosureError(Exception):
    """A cell would be published that reveals a single firm."""

    def __init__(self, table: str, cell: CellKey, rule: str, detail: str):
        self.table = table
        self.cell = cell
        self.rule = rule
        self.detail = detail
        super().__init__(
            f"table {table!r}, cell (row={cell[0]!r}, column={cell[1]!r}) breaks the "
            f"{rule} rule: {detail}"
        )


@dataclass(frozen=True)
class Rules:
    """Disclosure-control thresholds.

    No defaults here: the values come from the study specification (``reports.sdc`` in
    ``config/reports.yaml``, `Rules.from_spec`), so one file says what the rules are.
    """

    min_firms: int
    dominance_share: float
    marker: str

    def __post_init__(self) -> None:
        if self.min_firms < 1:
            raise ValueError(f"min_firms must be >= 1, got {self.min_firms}")
        if not 0 < self.dominance_share <= 1:
            raise ValueError(f"dominance_share must be in (0, 1], got {self.dominance_share}")
        if not self.marker:
            raise ValueError("the suppression marker must not be empty")

    @classmethod
    def from_spec(cls, spec: Any) -> "Rules":
        """Rules from the specification's ``reports.sdc`` part (attributes) or a mapping
        with the same keys; every key is required."""
        get = (lambda k: spec[k]) if isinstance(spec, Mapping) else (lambda k: getattr(spec, k))
        try:
            return cls(
                min_firms=int(get("min_firms")),
                dominance_share=float(get("dominance_share")),
                marker=str(get("marker")),
            )
        except (KeyError, AttributeError) as exc:
            raise ValueError(f"disclosure rules need min_firms, dominance_share and marker: {exc}") from None

    from_config = from_spec  # a mapping of the ``sdc`` section

    def as_dict(self) -> dict[str, Any]:
        return {
            "min_firms": self.min_firms,
            "dominance_share": self.dominance_share,
            "marker": self.marker,
        }

    def note(self) -> str:
        return (
            f"{self.marker}: suppressed for confidentiality (fewer than {self.min_firms} "
            f"firms, or the largest firm above {self.dominance_share:.0%} of the cell "
            "total, or suppressed so that such a cell cannot be recovered from totals)."
        )

    def none_suppressed_note(self) -> str:
        return (
            f"Disclosure control (cells of fewer than {self.min_firms} firms, or with the "
            f"largest firm above {self.dominance_share:.0%} of the cell total, are suppressed): "
            "no cell needed suppression."
        )


@dataclass(frozen=True)
class Cell:
    """One aggregate cell.

    value        the statistic to publish (count, share, mean, sum); None = no data
    kind         frequency | magnitude | blank (left empty by design)
    n_firms      distinct firms contributing; for a frequency cell left None it is
                 taken to be the value (a count of firms)
    total        magnitude cells: sum over firms of |contribution|
    max_contrib  magnitude cells: largest single firm's |contribution|
    """

    value: float | None
    kind: str = FREQUENCY
    n_firms: int | None = None
    total: float | None = None
    max_contrib: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown cell kind {self.kind!r}; expected one of {KINDS}")

    @property
    def contributors(self) -> int | None:
        if self.n_firms is not None:
            return int(self.n_firms)
        if self.kind == FREQUENCY and self.value is not None:
            return int(round(float(self.value)))
        return None

    @property
    def has_value(self) -> bool:
        return (
            self.kind != BLANK
            and self.value is not None
            and not (isinstance(self.value, float) and math.isnan(self.value))
        )


BLANK_CELL = Cell(value=None, kind=BLANK)


@dataclass(frozen=True)
class Constraint:
    """``sum(cells) == total``: a published total that links cells.

    ``total`` is a key of the table when the total is a cell of it (a margin);
    None when the total is published elsewhere (a panel title, another table) and
    so known to a reader.
    """

    cells: tuple[CellKey, ...]
    total: CellKey | None = None
    label: str = ""


@dataclass
class CellTable:
    """A grid of aggregate cells keyed by (row, column), plus linear constraints."""

    name: str
    rows: list[str]
    columns: list[str]
    cells: dict[CellKey, Cell]
    constraints: list[Constraint] = field(default_factory=list)

    def __post_init__(self) -> None:
        known_rows, known_cols = set(self.rows), set(self.columns)
        for r, c in self.cells:
            if r not in known_rows or c not in known_cols:
                raise ValueError(f"{self.name}: cell ({r!r}, {c!r}) outside rows/columns")
        for con in self.constraints:
            for key in (*con.cells, *((con.total,) if con.total else ())):
                if key[0] not in known_rows or key[1] not in known_cols:
                    raise ValueError(f"{self.name}: constraint {con.label!r} names unknown cell {key}")

    def cell(self, row: str, column: str) -> Cell:
        return self.cells.get((row, column), BLANK_CELL)

    def keys(self) -> Iterable[CellKey]:
        for r in self.rows:
            for c in self.columns:
                yield (r, c)


def with_margins(
    table: CellTable,
    *,
    row_totals: bool = True,
    column_totals: bool = True,
    total_label: str = "Total",
) -> CellTable:
    """Add a total column and/or row to an *additive* table (counts or sums).

    Totals are frequency cells when all members are frequency cells, magnitude
    cells otherwise (total of totals, largest of the largest contributions); their
    firm counts add up, which assumes a firm is in one cell of a row or column.
    The constraints linking members and totals are added for secondary suppression.
    """
    rows, cols = list(table.rows), list(table.columns)
    cells = dict(table.cells)
    constraints = list(table.constraints)

    def total_of(keys: list[CellKey]) -> Cell:
        members = [cells[k] for k in keys if k in cells and cells[k].has_value]
        if not members:
            return Cell(value=0.0, kind=FREQUENCY, n_firms=0)
        kind = MAGNITUDE if any(m.kind == MAGNITUDE for m in members) else FREQUENCY
        n = [m.contributors for m in members]
        return Cell(
            value=float(sum(float(m.value) for m in members)),
            kind=kind,
            n_firms=sum(x for x in n if x is not None),
            total=sum((m.total or 0.0) for m in members) if kind == MAGNITUDE else None,
            max_contrib=max((m.max_contrib or 0.0) for m in members) if kind == MAGNITUDE else None,
        )

    if row_totals:
        if total_label in cols:
            raise ValueError(f"{table.name}: column {total_label!r} exists already")
        for r in rows:
            keys = [(r, c) for c in cols]
            cells[(r, total_label)] = total_of(keys)
            constraints.append(Constraint(tuple(keys), (r, total_label), f"row {r}"))
        cols = cols + [total_label]
    if column_totals:
        if total_label in rows:
            raise ValueError(f"{table.name}: row {total_label!r} exists already")
        for c in cols:
            keys = [(r, c) for r in rows]
            cells[(total_label, c)] = total_of(keys)
            constraints.append(Constraint(tuple(keys), (total_label, c), f"column {c}"))
        rows = rows + [total_label]
    return CellTable(table.name, rows, cols, cells, constraints)


@dataclass
class ProtectedTable:
    """A table after disclosure control.

    ``suppressed`` maps each suppressed cell to the rule that suppressed it
    (threshold, dominance or secondary). `published_value` is the only accessor
    renderers use: it never returns a suppressed cell's value.
    """

    table: CellTable
    rules: Rules
    suppressed: dict[CellKey, str]

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def rows(self) -> list[str]:
        return self.table.rows

    @property
    def columns(self) -> list[str]:
        return self.table.columns

    def is_suppressed(self, row: str, column: str) -> bool:
        return (row, column) in self.suppressed

    def is_blank(self, row: str, column: str) -> bool:
        return self.table.cell(row, column).kind == BLANK

    def published_value(self, row: str, column: str) -> float | None:
        """The value a reader may see; None when blank, missing or suppressed."""
        if (row, column) in self.suppressed:
            return None
        cell = self.table.cell(row, column)
        return float(cell.value) if cell.has_value else None

    def mask(self) -> dict[CellKey, bool]:
        return {k: k in self.suppressed for k in self.table.keys()}

    def summary(self) -> dict[str, Any]:
        """What was suppressed and why; labels only, never values."""
        by_rule: dict[str, int] = {THRESHOLD: 0, DOMINANCE: 0, SECONDARY: 0}
        for reason in self.suppressed.values():
            by_rule[reason] = by_rule.get(reason, 0) + 1
        return {
            "rules": self.rules.as_dict(),
            "n_cells": sum(1 for k in self.table.keys() if self.table.cell(*k).kind != BLANK),
            "n_suppressed": len(self.suppressed),
            "by_rule": by_rule,
            "suppressed_cells": [
                {"row": r, "column": c, "rule": rule} for (r, c), rule in self.suppressed.items()
            ],
        }


def primary_violation(cell: Cell, rules: Rules) -> tuple[str, str] | None:
    """The (rule, detail) a cell breaks when published as is, or None."""
    if not cell.has_value:
        return None
    n = cell.contributors
    if n is None:
        raise ValueError(f"a {cell.kind} cell needs n_firms to be checked")
    if 0 < n < rules.min_firms:
        return THRESHOLD, f"based on {n} firm(s), fewer than {rules.min_firms}"
    if cell.kind == MAGNITUDE and n > 0:
        if cell.total is None or cell.max_contrib is None:
            raise ValueError("a magnitude cell needs total and max_contrib to be checked")
        total = abs(float(cell.total))
        if total > 0:
            share = abs(float(cell.max_contrib)) / total
            if share > rules.dominance_share:
                return (
                    DOMINANCE,
                    f"largest firm holds more than {rules.dominance_share:.0%} of the cell total",
                )
    return None


def _numeric_member(table: CellTable, key: CellKey) -> bool:
    return table.cell(*key).has_value


def recoverable_cells(table: CellTable, suppressed: Iterable[CellKey]) -> list[CellKey]:
    """Suppressed cells whose value the published constraints determine exactly.

    Unknowns are the suppressed cells; each constraint touching one is a row of
    the matrix A (members +1, a total -1). A cell is determined iff every vector
    of the null space of A is zero at its coordinate.
    """
    hidden = set(suppressed)
    unknown = [k for k in table.keys() if k in hidden]
    if not unknown:
        return []
    index = {k: i for i, k in enumerate(unknown)}
    rows = []
    for con in table.constraints:
        coeffs = np.zeros(len(unknown))
        touched = False
        for key in con.cells:
            if key in index:
                coeffs[index[key]] += 1.0
                touched = True
        if con.total is not None and con.total in index:
            coeffs[index[con.total]] -= 1.0
            touched = True
        if touched:
            rows.append(coeffs)
    if not rows:
        return []
    a = np.vstack(rows)
    _, s, vt = np.linalg.svd(a)
    tol = max(a.shape) * np.finfo(float).eps * (s[0] if s.size else 0.0) * 10
    rank = int((s > tol).sum())
    null = vt[rank:].T  # len(unknown) x (n - rank)
    if null.shape[1] == 0:
        return list(unknown)
    norms = np.linalg.norm(null, axis=1)
    return [k for k, nrm in zip(unknown, norms) if nrm < 1e-9]


def _complement_candidates(
    table: CellTable, key: CellKey, suppressed: Mapping[CellKey, str], anywhere: bool = False
) -> list[CellKey]:
    out: list[CellKey] = []
    for con in table.constraints:
        members = list(con.cells) + ([con.total] if con.total else [])
        if not anywhere and key not in members:
            continue
        for m in members:
            if m != key and m not in suppressed and _numeric_member(table, m) and m not in out:
                out.append(m)
    return out


def _members(con: Constraint) -> list[CellKey]:
    return list(con.cells) + ([con.total] if con.total else [])


def _smallest(
    table: CellTable, candidates: list[CellKey], preferred: set[CellKey] | None = None
) -> CellKey:
    totals = {con.total for con in table.constraints if con.total is not None}
    order = {k: i for i, k in enumerate(table.keys())}
    preferred = preferred or set()

    def sort_key(k: CellKey) -> tuple:
        v = abs(float(table.cell(*k).value))
        return (k not in preferred, k in totals, v == 0.0, v, order[k])

    return min(candidates, key=sort_key)


def _next_complement(
    table: CellTable, exposed: list[CellKey], suppressed: Mapping[CellKey, str]
) -> CellKey:
    """The next complementary cell.

    First a constraint with a lone suppressed member (a row or column total that
    would give it away): its smallest eligible member, preferring one that also
    sits in another such constraint (one suppression mending two). Otherwise (a
    cell pinned down by a chain of constraints) the smallest eligible cell sharing
    a constraint with the first exposed cell.
    """
    singles = [
        con for con in table.constraints
        if sum(1 for m in _members(con) if m in suppressed) == 1
    ]
    for i, con in enumerate(singles):
        candidates = [
            m for m in _members(con) if m not in suppressed and _numeric_member(table, m)
        ]
        if candidates:
            others = {m for j, c in enumerate(singles) if j != i for m in _members(c)}
            return _smallest(table, candidates, preferred=others)
    key = exposed[0]
    candidates = _complement_candidates(table, key, suppressed) or _complement_candidates(
        table, key, suppressed, anywhere=True
    )
    if not candidates:
        raise DisclosureError(
            table.name, key, SECONDARY, "recoverable from totals and no cell left to suppress"
        )
    return _smallest(table, candidates)


def protect(table: CellTable, rules: Rules) -> ProtectedTable:
    """Apply primary (threshold, dominance) and secondary suppression."""
    if not isinstance(rules, Rules):
        raise TypeError("protect needs the disclosure Rules (from the study specification)")
    suppressed: dict[CellKey, str] = {}
    for key in table.keys():
        hit = primary_violation(table.cell(*key), rules)
        if hit is not None:
            suppressed[key] = hit[0]
    # Each pass suppresses one more cell, so the loop ends within len(cells) passes.
    while True:
        exposed = recoverable_cells(table, suppressed)
        if not exposed:
            break
        suppressed[_next_complement(table, exposed, suppressed)] = SECONDARY
    return ProtectedTable(table=table, rules=rules, suppressed=suppressed)


@dataclass(frozen=True)
class Violation:
    """An unsafe cell: where it is and which rule it breaks (never its value)."""

    table: str
    cell: CellKey
    rule: str
    detail: str

    def error(self) -> DisclosureError:
        return DisclosureError(self.table, self.cell, self.rule, self.detail)

    def describe(self) -> str:
        return f"{self.table} (row {self.cell[0]!r}, column {self.cell[1]!r}): {self.rule} rule"


def violations(table: CellTable | ProtectedTable, rules: Rules | None = None) -> list[Violation]:
    """Every cell that publishing `table` as is would reveal, with the rule it breaks.

    Checks each published cell against the primary rules (with `rules`, or the rules a
    `ProtectedTable` was protected with) and each suppressed cell for exact recovery
    through the table's constraints. Labels only: no value is carried.
    """
    if isinstance(table, ProtectedTable):
        cells, suppressed = table.table, dict(table.suppressed)
        rules = rules or table.rules
    elif isinstance(table, CellTable):
        cells, suppressed = table, {}
        if rules is None:
            raise TypeError("checking a raw CellTable needs the disclosure Rules")
    else:
        raise TypeError(f"expected a CellTable or ProtectedTable, got {type(table).__name__}")
    found: list[Violation] = []
    for key in cells.keys():
        if key in suppressed:
            continue
        hit = primary_violation(cells.cell(*key), rules)
        if hit is not None:
            found.append(Violation(cells.name, key, hit[0], hit[1]))
    for key in recoverable_cells(cells, suppressed):
        found.append(Violation(
            cells.name, key, SECONDARY,
            "suppressed, but its value follows exactly from published totals and cells",
        ))
    return found


def count_by_rule(found: Iterable[Violation]) -> dict[str, int]:
    """Unsafe cells counted by rule (what check metadata and alerts carry)."""
    out: dict[str, int] = {}
    for v in found:
        out[v.rule] = out.get(v.rule, 0) + 1
    return out


def assert_safe(table: CellTable | ProtectedTable, rules: Rules | None = None) -> None:
    """Raise `DisclosureError` if publishing `table` would reveal a firm (the first
    unsafe cell of `violations`)."""
    found = violations(table, rules)
    if found:
        raise found[0].error()
