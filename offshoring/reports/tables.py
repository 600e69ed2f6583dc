"""Table builders: Table 1 from DuckDB cell aggregates, Tables 2 and 3 from model results.

Table 1
    `table1_cells(con, start_year, end_year)` runs ``sql/report_table1.sql`` and
    returns a `CellTable` (rows = statistics, columns = sector x type);
    `table1(con, rules=...)` protects it and returns the `DisplayTable` to write.

Tables 2 and 3
    `model_table(results, spec)` lays out a results object with statsmodels-like
    ``params``, ``bse``, ``pvalues`` (pandas Series indexed by exog names) and
    ``nobs`` / ``ngroups`` in the paper's layout; Table 3 shows hazard ratios
    (``exp(params)``, standard errors by the delta method ``HR * se``).
    `comparison_table(results, spec, published, truth)` sets the paper's value
    beside this run's estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from offshoring.reports import load_report_config, sdc
from offshoring.reports.published import PUBLISHED, PublishedTable
from offshoring.reports.render import (
    DisplayRow,
    DisplayTable,
    fmt_number,
    rows_from_protected,
    stars,
)
from offshoring.settings import PROJECT_ROOT

SQL_DIR = PROJECT_ROOT / "sql"
SOURCE = "elaborations on IMEFAS and AIDA data (this run)"

SECTORS = (("clothing", "Clothing production"), ("footwear", "Footwear production"))
TYPES = (("outsourcing", "Offshore outsourcing"), ("offshoring", "Offshoring"))


def read_sql(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def run_sql(con: Any, name: str, params: Mapping[str, Any]):
    """Run a report SQL file on a DuckDB connection; a polars DataFrame."""
    return con.sql(read_sql(name), params=dict(params)).pl()


def column_key(sector: str, type_: str) -> str:
    return f"{sector}:{type_}"


def sector_type_columns() -> list[str]:
    return [column_key(s, t) for s, _ in SECTORS for t, _ in TYPES]


def sector_type_header() -> list[list[tuple[str, int]]]:
    return [
        [(label, len(TYPES)) for _, label in SECTORS],
        [(label, 1) for _ in SECTORS for _, label in TYPES],
    ]


# --------------------------------------------------------------------------- table 1


@dataclass(frozen=True)
class StatRow:
    key: str
    label: str
    kind: str
    types: tuple[str, ...]
    fmt: Callable[[float], str]


def _digits(d: int, percent: bool = False) -> Callable[[float], str]:
    return lambda v: fmt_number(v, d, percent=percent)


BOTH = ("outsourcing", "offshoring")
# Money amounts and headcounts are magnitude cells (dominance rule); counts,
# durations and shares are frequency cells (threshold rule only).
TABLE1_ROWS: tuple[StatRow, ...] = (
    StatRow("n_firms", "Number of firms", sdc.FREQUENCY, BOTH, _digits(0)),
    StatRow("duration", "Duration of internationalization activity", sdc.FREQUENCY, BOTH, _digits(2)),
    StatRow("turnover", "Turnover", sdc.MAGNITUDE, BOTH, _digits(0)),
    StatRow("employees", "Number of employees", sdc.MAGNITUDE, BOTH, _digits(2)),
    StatRow("export_share", "% of export on turnover", sdc.FREQUENCY, ("outsourcing",), _digits(2)),
    StatRow(
        "subcontracting_abroad",
        "Cost of subcontracting production in foreign countries",
        sdc.MAGNITUDE,
        ("outsourcing",),
        _digits(0),
    ),
    StatRow(
        "subcontracting_italy",
        "Cost of subcontracting production in Italy",
        sdc.MAGNITUDE,
        ("outsourcing",),
        _digits(0),
    ),
    StatRow(
        "n_subsidiaries",
        "Number of subsidiaries in foreign countries",
        sdc.FREQUENCY,
        ("offshoring",),
        _digits(2),
    ),
    StatRow(
        "district_share",
        "% of firms located inside Industrial Districts",
        sdc.FREQUENCY,
        ("outsourcing",),
        _digits(0, percent=True),
    ),
)


def _period(config: Mapping[str, Any] | None, start_year: int | None, end_year: int | None,
            con: Any = None):
    """(start, end) of Table 1; a null end in the config means the latest panel year, so a
    new survey year extends the table (the synthetic default ends in 2012, as the paper)."""
    cfg = (config if config is not None else load_report_config()).get("table1", {})
    start = int(start_year if start_year is not None else cfg.get("start_year", 2007))
    end = end_year if end_year is not None else cfg.get("end_year")
    if end is None:
        latest = con.execute("SELECT max(year) FROM panel.firm_years").fetchall()[0][0] if con else None
        end = latest if latest is not None else 2012
    return start, int(end)


def table1_cells(
    con: Any, start_year: int = 2007, end_year: int = 2012, *, name: str = "table1"
) -> sdc.CellTable:
    """Table 1 aggregates as a `CellTable`; cells the paper leaves empty are blank."""
    df = run_sql(con, "report_table1.sql", {"start_year": start_year, "end_year": end_year})
    found = {(r["stat"], column_key(r["sector"], r["type"])): r for r in df.iter_rows(named=True)}
    cells: dict[sdc.CellKey, sdc.Cell] = {}
    for spec in TABLE1_ROWS:
        for sector, _ in SECTORS:
            for type_, _ in TYPES:
                col = column_key(sector, type_)
                if type_ not in spec.types:
                    cells[(spec.key, col)] = sdc.BLANK_CELL
                    continue
                r = found.get((spec.key, col))
                if r is None:  # no firm of this group: a zero count, an empty mean
                    value = 0.0 if spec.key == "n_firms" else None
                    cells[(spec.key, col)] = sdc.Cell(
                        value, spec.kind, n_firms=0, total=0.0, max_contrib=0.0
                    )
                    continue
                cells[(spec.key, col)] = sdc.Cell(
                    value=r["value"],
                    kind=spec.kind,
                    n_firms=int(r["n_firms"]),
                    total=r["total"],
                    max_contrib=r["max_contrib"],
                )
    return sdc.CellTable(
        name=name,
        rows=[s.key for s in TABLE1_ROWS],
        columns=sector_type_columns(),
        cells=cells,
    )


def table1_display(
    protected: sdc.ProtectedTable, start_year: int = 2007, end_year: int = 2012
) -> DisplayTable:
    fmts = {s.key: s.fmt for s in TABLE1_ROWS}
    rows = rows_from_protected(protected, [(s.key, s.label) for s in TABLE1_ROWS], fmts)
    return DisplayTable(
        name=protected.name,
        title=(
            "Table 1. Main characteristics of firms engaged in offshore outsourcing and "
            f"offshoring activities (average values over the {start_year}-{end_year} period)"
        ),
        header=sector_type_header(),
        rows=rows,
        notes=[
            "Number of firms: yearly average. Duration: mean length in years of the "
            "activity spells overlapping the period. Money amounts in EUR.",
            protected.rules.note(),
            "–: no firm in the group.",
        ],
        source=SOURCE,
        sdc=protected,
    )


def table1(
    con: Any,
    rules: sdc.Rules | None = None,
    start_year: int | None = None,
    end_year: int | None = None,
    *,
    config: Mapping[str, Any] | None = None,
) -> DisplayTable:
    """Table 1, protected and ready for `render.write_table` (``.sdc`` holds the mask)."""
    start, end = _period(config, start_year, end_year, con)
    protected = sdc.protect(table1_cells(con, start, end), rules or sdc.Rules.from_config())
    return table1_display(protected, start, end)


# --------------------------------------------------------------------------- tables 2, 3


@dataclass(frozen=True)
class ModelTableSpec:
    name: str
    title: str
    rows: tuple[tuple[str, str], ...]  # (exog name, label)
    estimate_header: str = "Coefficient"
    se_header: str = "Std. err."
    exponentiate: bool = False
    footer_rows: tuple[tuple[str, str], ...] = (
        ("Industry dummies", "Yes"),
        ("Territorial dummies", "Yes"),
    )
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def published(self) -> PublishedTable | None:
        return PUBLISHED.get(self.name)


TABLE2_ROWS = (
    ("y_initial", "y_2005"),
    ("y_lag", "yt-1"),
    ("export_ratio_lag", "Export (% of sales)"),
    ("market_area_order_lag", "Extension of market area served"),
    ("credit_access_lag", "Financial constraints (1 if firm has access to credit)"),
    ("va_per_employee_k_lag", "Value added per employee"),
    ("supplier_lag", "Supplier"),
    ("district", "Location inside an industrial district"),
    ("n_offshoring_prov_lag", "# of firms engaged in offshoring activities at t-1"),
    ("n_outsourcing_prov_lag", "# of firms engaged in offshore outsourcing activities at t-1"),
)

TABLE3_ROWS = (
    ("share_destination", "Share of outsourcing costs in the foreign region"),
    ("supplier", "Supplier"),
    ("profit", "Profits (1 if yes)"),
    ("export_share_pre", "Export (% of sales)"),
    ("wage_per_employee_k", "Wage cost per employee"),
    ("roi", "Return on Investments"),
    ("employees", "Size (Number of employees)"),
    ("n_outsourcing_prov_pre", "# of firms engaged in offshore outsourcing activities at t-1"),
    ("n_migrant_prov_lag", "# of migrant firms operating in the area"),
)

STARS_NOTE = "*** p<0.01, ** p<0.05, * p<0.1."


def table2_spec(initial_outcome_label: str | None = None, *, config: Mapping[str, Any] | None = None) -> ModelTableSpec:
    if initial_outcome_label is None:
        cfg = (config if config is not None else load_report_config()).get("table2", {})
        initial_outcome_label = str(cfg.get("initial_outcome_label", "y_2005"))
    rows = tuple(
        (k, initial_outcome_label if k == "y_initial" else label) for k, label in TABLE2_ROWS
    )
    return ModelTableSpec(
        name="table2",
        title=(
            "Table 2. Dynamic Probit Model: Probability to engage in offshore outsourcing "
            "among manufacturing firms in Italy, period 2007-2012, industries: clothing "
            "and footwear production"
        ),
        rows=rows,
        notes=(STARS_NOTE,),
    )


def table3_spec() -> ModelTableSpec:
    return ModelTableSpec(
        name="table3",
        title=(
            "Table 3. Cox PH Model: Relative risks of backshoring among manufacturing firms "
            "in Italy, period 2007-2012, industries: clothing and footwear production"
        ),
        rows=TABLE3_ROWS,
        estimate_header="Hazard ratio",
        se_header="Std. err.",
        exponentiate=True,
        notes=(
            STARS_NOTE,
            "Hazard ratios exp(b); standard errors by the delta method (HR x se(b)); "
            "stars test b = 0.",
        ),
    )


@dataclass(frozen=True)
class Estimate:
    """One coefficient on the table's scale (hazard ratio when exponentiated)."""

    param: float
    se: float | None
    pvalue: float | None
    value: float
    value_se: float | None


def _series_get(obj: Any, name: str, key: str) -> float | None:
    s = getattr(obj, name, None)
    if s is None:
        return None
    try:
        v = s[key]
    except (KeyError, IndexError, TypeError):
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _count(results: Any, *names: str) -> int | None:
    for n in names:
        v = getattr(results, n, None)
        if v is not None:
            try:
                return int(v)
            except (TypeError, ValueError):
                continue
    return None


def nobs_of(results: Any) -> int | None:
    return _count(results, "nobs")


def ngroups_of(results: Any) -> int | None:
    return _count(results, "ngroups", "n_groups", "n_groups_")


def estimate(results: Any, key: str, exponentiate: bool = False) -> Estimate | None:
    """The estimate of `key` in `results`, or None when the model has no such term."""
    b = _series_get(results, "params", key)
    if b is None:
        return None
    se = _series_get(results, "bse", key)
    p = _series_get(results, "pvalues", key)
    if p is None and se:
        p = math.erfc(abs(b / se) / math.sqrt(2.0))  # two-sided normal test
    if exponentiate:
        hr = math.exp(b)
        return Estimate(b, se, p, hr, hr * se if se is not None else None)
    return Estimate(b, se, p, b, se)


def _model_exemption(results: Any, rules: sdc.Rules | None) -> str:
    """Model estimates pool many firms; refuse a model fitted on fewer than min_firms."""
    rules = rules or sdc.Rules.from_config()
    groups, nobs = ngroups_of(results), nobs_of(results)
    n = groups if groups is not None else nobs
    if n is not None and n < rules.min_firms:
        raise sdc.DisclosureError(
            "model", ("Groups", "n"), sdc.THRESHOLD, f"model fitted on {n} firm(s)"
        )
    return f"model estimates on {n if n is not None else 'an unknown number of'} firms"


def model_table(
    results: Any,
    spec: ModelTableSpec,
    *,
    digits: int | None = None,
    rules: sdc.Rules | None = None,
) -> DisplayTable:
    """Table 2 or 3 in the paper's layout: estimate with stars, standard error,
    the dummies rows, Observations and Groups."""
    digits = digits if digits is not None else int(load_report_config().get("format", {}).get("digits", 3))
    rows: list[DisplayRow] = []
    missing = []
    for key, label in spec.rows:
        est = estimate(results, key, spec.exponentiate)
        if est is None:
            missing.append(key)
            rows.append(DisplayRow(label, ["", ""], raw=[None, None]))
            continue
        rows.append(
            DisplayRow(
                label,
                [fmt_number(est.value, digits) + stars(est.pvalue), fmt_number(est.value_se, digits)],
                raw=[round(est.value, 6), None if est.value_se is None else round(est.value_se, 6)],
            )
        )
    for i, (label, text) in enumerate(spec.footer_rows):
        rows.append(DisplayRow(label, [text, ""], rule_above=i == 0))
    counts = (("Observations", nobs_of(results)), ("Groups", ngroups_of(results)))
    for i, (label, n) in enumerate(counts):
        rows.append(DisplayRow(label, [fmt_number(n, 0), ""], rule_above=i == 0, raw=[n, None]))
    notes = list(spec.notes)
    if missing:
        notes.append("Not in this model's results: " + ", ".join(missing) + ".")
    return DisplayTable(
        name=spec.name,
        title=spec.title,
        header=[[(spec.estimate_header, 1), (spec.se_header, 1)]],
        rows=rows,
        notes=notes,
        source=SOURCE,
        sdc_exempt=_model_exemption(results, rules),
    )


def comparison_table(
    results: Any,
    spec: ModelTableSpec,
    published: PublishedTable | None = None,
    truth: Mapping[str, float] | None = None,
    *,
    digits: int | None = None,
    rules: sdc.Rules | None = None,
) -> DisplayTable:
    """Published value, this run's estimate and their difference (estimate - published).

    With `truth` (synthetic data: the generator's parameters, keyed by exog name,
    on the model's parameter scale, i.e. log hazard ratios for Table 3), adds the
    true value on the table's scale and whether the 95% interval b +/- 1.96 se
    covers it.
    """
    digits = digits if digits is not None else int(load_report_config().get("format", {}).get("digits", 3))
    published = published if published is not None else spec.published
    pub_est = published.estimates if published is not None else {}
    f = lambda v: fmt_number(v, digits)  # noqa: E731
    header = ["Published", "Published s.e.", "Estimate", "Std. err.", "Difference"]
    if truth is not None:
        header += ["True value", "Covered by 95% CI"]
    rows: list[DisplayRow] = []
    for key, label in spec.rows:
        pub = pub_est.get(key)
        est = estimate(results, key, spec.exponentiate)
        diff = (est.value - pub.value) if (est is not None and pub is not None) else None
        cells = [
            (f(pub.value) + pub.stars) if pub else "",
            f(pub.se) if pub and pub.se is not None else "",
            (f(est.value) + stars(est.pvalue)) if est else "",
            f(est.value_se) if est and est.value_se is not None else "",
            f(diff) if diff is not None else "",
        ]
        raw: list[Any] = [
            pub.value if pub else None,
            pub.se if pub else None,
            round(est.value, 6) if est else None,
            round(est.value_se, 6) if est and est.value_se is not None else None,
            round(diff, 6) if diff is not None else None,
        ]
        if truth is not None:
            t = truth.get(key)
            if t is None:
                cells += ["", ""]
                raw += [None, None]
            else:
                shown = math.exp(t) if spec.exponentiate else float(t)
                covered = None
                if est is not None and est.se is not None:
                    covered = abs(est.param - float(t)) <= 1.959963984540054 * est.se
                cells += [f(shown), "" if covered is None else ("yes" if covered else "no")]
                raw += [round(shown, 6), covered]
        rows.append(DisplayRow(label, cells, raw=raw))
    for i, (label, pub_n, est_n) in enumerate(
        (
            ("Observations", published.nobs if published else None, nobs_of(results)),
            ("Groups", published.ngroups if published else None, ngroups_of(results)),
        )
    ):
        diff = est_n - pub_n if (est_n is not None and pub_n is not None) else None
        cells = [fmt_number(pub_n, 0), "", fmt_number(est_n, 0), "", fmt_number(diff, 0)]
        raw = [pub_n, None, est_n, None, diff]
        if truth is not None:
            cells += ["", ""]
            raw += [None, None]
        rows.append(DisplayRow(label, cells, rule_above=i == 0, raw=raw))
    scale = "hazard ratios" if spec.exponentiate else "coefficients"
    notes = [
        f"Comparison of {scale}: the paper's published values beside this run's "
        "estimates; difference = estimate - published.",
        STARS_NOTE,
    ]
    if truth is not None:
        notes.append("True value: the synthetic generator's parameter; covered: |b - true| <= 1.96 se(b).")
    return DisplayTable(
        name=f"{spec.name}_comparison",
        title=f"{spec.title.split('.')[0]}: published values and this run's estimates",
        header=[[(h, 1) for h in header]],
        rows=rows,
        notes=notes,
        source=SOURCE,
        sdc_exempt=_model_exemption(results, rules),
    )
