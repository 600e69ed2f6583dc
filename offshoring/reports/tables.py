"""Table builders: Table 1 from DuckDB cell aggregates, Tables 2 and 3 from model results.

Nothing here reads a settings file: the disclosure rules, periods, digits, the model
specifications and the origin of the data (`DataSource`) are arguments, handed down
by the assets from the study specification.

Table 1
    `table1_cells(con, start_year, end_year)` runs ``sql/report_table1.sql`` and
    returns a `CellTable` (rows = statistics, columns = sector x type);
    `table1(con, rules, start_year, end_year, source=...)` protects it and returns the
    `DisplayTable` to write; `table1_comparison` sets the paper's Table 1 beside it.

Tables 2 and 3
    `table2_spec(probit, period)` and `table3_spec(cox, period)` lay a table out from
    the model specification (`DynamicSpec`, `CoxSpec`): the rows are the specification's
    terms (not its dummies, Mundlak means or initial values), labelled by its
    ``labels``; its dummies give the "... dummies: Yes" lines; the title's period is the
    estimation sample's (`probit_period`, `cox_period`). `model_table(results, spec)`
    fills it from a results object with statsmodels-like ``params``, ``bse``,
    ``pvalues`` (pandas Series indexed by exog names) and ``nobs`` / ``ngroups``;
    Table 3 shows hazard ratios (``exp(params)``, standard errors by the delta method
    ``HR * se``). `comparison_table(results, spec, published, truth)` sets the paper's
    value beside this run's estimate.
"""

from __future__ import annotations

import dataclasses

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from offshoring.reports import sdc
from offshoring.reports.published import (
    PUBLISHED,
    TABLE1 as PUBLISHED_TABLE1,
    TABLE1_PERIOD as PUBLISHED_TABLE1_PERIOD,
    PublishedTable,
)
from offshoring.reports.render import (
    NO_DATA,
    DisplayRow,
    DisplayTable,
    fmt_number,
    legend_notes,
    published_cell,
    rows_from_protected,
    stars,
)
from offshoring.reports.source import DataSource
from offshoring.econometrics._summary import covers
from offshoring.sqlfiles import query

SECTORS = (("clothing", "Clothing production"), ("footwear", "Footwear production"))
TYPES = (("outsourcing", "Offshore outsourcing"), ("offshoring", "Offshoring"))
INDUSTRIES = "industries: clothing and footwear production"


def column_key(sector: str, type_: str) -> str:
    return f"{sector}:{type_}"


def sector_type_columns() -> list[str]:
    return [column_key(s, t) for s, _ in SECTORS for t, _ in TYPES]


def sector_type_header() -> list[list[tuple[str, int]]]:
    return [
        [(label, len(TYPES)) for _, label in SECTORS],
        [(label, 1) for _ in SECTORS for _, label in TYPES],
    ]


def period_text(period: tuple[int, int]) -> str:
    a, b = int(period[0]), int(period[1])
    return str(a) if a == b else f"{a}-{b}"


def _source_line(source: DataSource) -> str:
    if not isinstance(source, DataSource):
        raise TypeError("a report needs its DataSource (synthetic or real data), passed in by the caller")
    return source.line()


# --------------------------------------------------------------------------- table 1


@dataclass(frozen=True)
class StatRow:
    key: str
    label: str
    kind: str
    types: tuple[str, ...]
    fmt: Callable[[float], str]
    # a share of firms (e.g. % inside districts): it rests on the firms that have the
    # attribute, not on every firm of the group (see `table1_cells`)
    share: bool = False


def _digits(d: int, percent: bool = False) -> Callable[[float], str]:
    return lambda v: fmt_number(v, d, percent=percent)


BOTH = ("outsourcing", "offshoring")
# Money amounts and headcounts are magnitude cells (dominance rule); counts,
# durations, means of ratios and shares are frequency cells (threshold rule on the
# firms behind them).
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
        share=True,
    ),
)


class Table1PeriodError(ValueError):
    """Table 1's window, or a figure's year, holds no year of data (the sentence says which
    years there are)."""


def _years(con: Any, sql: str) -> list[int]:
    return sorted(int(r[0]) for r in con.execute(sql).fetchall() if r[0] is not None)


def _survey_years(con: Any) -> list[int]:
    """The years of the survey panel (Table 1's outsourcing columns, the figures' outsourcing
    groups)."""
    return _years(con, "SELECT DISTINCT year FROM panel.firm_years")


def _aida_years(con: Any) -> list[int]:
    """The years the AIDA export has data for (Table 1's offshoring columns, the figures'
    offshoring groups): any company's turnover or employees, so that a year in which no
    company controls a foreign subsidiary still counts as a year of data."""
    raw = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw' "
                      "AND table_name = 'aida_firm_years'").fetchall()[0][0]
    if raw:
        return _years(con, "SELECT DISTINCT year FROM raw.aida_firm_years "
                           "WHERE turnover IS NOT NULL OR employees IS NOT NULL")
    return _years(con, "SELECT DISTINCT year FROM panel.aida_offshoring")  # a warehouse of the panel alone


def table1_years(con: Any, period: tuple[int, int]) -> list[int]:
    """The survey years inside `period`: a missing delivery leaves a gap the notes name."""
    return [y for y in _survey_years(con) if period[0] <= y <= period[1]]


def table1_period(con: Any, start_year: int, end_year: int | None) -> tuple[int, int]:
    """(first, last) survey year inside the specification's window ``table1.start_year`` to
    ``table1.end_year`` (None: the latest survey year loaded, so a new survey delivery extends
    the table; an AIDA year beyond it waits for its survey year).

    The title prints this period: the specification's bounds where the data run past them,
    the data's first and last years where they do not (a window of 2003-2015 on data of
    2008-2011 is "2008-2011"). The survey years set it: AIDA's one export usually covers
    every year, and a year of AIDA alone made a survey year missing look covered. No survey
    year inside the window is refused."""
    years = _survey_years(con)
    upper = end_year if end_year is not None else (years[-1] if years else None)
    inside = [y for y in years if y >= int(start_year) and (upper is None or y <= int(upper))]
    if not inside:
        held = f"{years[0]}-{years[-1]}" if years else "none"
        window = f"{start_year}-{end_year}" if end_year is not None else f"{start_year} onwards"
        raise Table1PeriodError(
            f"Table 1's period (reports.yaml: table1.start_year {start_year}, end_year "
            f"{end_year if end_year is not None else 'latest'}) holds no year of the survey panel: the window "
            f"is {window}, the survey years loaded are {held}. Set table1.start_year and end_year to years "
            f"loaded.")
    return inside[0], inside[-1]


def require_data_year(con: Any, year: int, setting: str) -> None:
    """A figure of one year (`setting`, e.g. ``figure1.year``) drawn for a year with no data
    showed every group as 0 firms, with the disclosure check passed: refused instead. Both
    sources are needed (outsourcing from the survey, offshoring from AIDA): a year of AIDA
    alone drew every outsourcing group at 0 firms."""
    lacking = [(name, years) for name, years in (("survey panel", _survey_years(con)),
                                                  ("AIDA export", _aida_years(con))) if int(year) not in years]
    if not lacking:
        return
    name, years = lacking[0]
    held = ", ".join(map(str, years)) if years else "none"
    raise Table1PeriodError(
        f"reports.yaml: {setting} is {year}, a year with no data in the {name} (its years are {held}): "
        f"the figure would show no firm in the groups it draws from it. Set {setting} to a year both the "
        f"survey and AIDA cover.")


def table1_gap_note(con: Any, period: tuple[int, int]) -> str | None:
    """A note naming the years inside the period without data, source by source (a survey
    delivery not made; a year the AIDA export lacks): the averages of that source's columns
    are over the years there are."""
    notes = []
    for source, columns, years in (("survey", "outsourcing", _survey_years(con)),
                                   ("AIDA", "offshoring", _aida_years(con))):
        have = [y for y in years if period[0] <= y <= period[1]]
        gaps = [y for y in range(period[0], period[1] + 1) if y not in have]
        if gaps:
            notes.append(f"No {source} data for {', '.join(map(str, gaps))}: the {columns} columns average "
                         f"over the {len(have)} years with data ({', '.join(map(str, have)) or 'none'}).")
    return " ".join(notes) or None


def table1_cells(con: Any, start_year: int, end_year: int, *, name: str = "table1") -> sdc.CellTable:
    """Table 1 aggregates as a `CellTable`; cells the paper leaves empty are blank.

    A share of firms (``district_share``) rests on the firms that have the attribute (a
    share of 4% of 50 firms tells the reader that 2 firms are inside a district): the
    threshold rule reads that number; a zero share rests on the whole group.
    """
    df = query(con, "report_table1", {"start_year": start_year, "end_year": end_year})
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
                n_firms = int(r["n_firms"])
                if spec.share:
                    n_with = int(r["n_with"] or 0)
                    n_firms = n_with if n_with > 0 else n_firms
                cells[(spec.key, col)] = sdc.Cell(
                    value=r["value"],
                    kind=spec.kind,
                    n_firms=n_firms,
                    total=r["total"],
                    max_contrib=r["max_contrib"],
                )
    return sdc.CellTable(
        name=name,
        rows=[s.key for s in TABLE1_ROWS],
        columns=sector_type_columns(),
        cells=cells,
    )


def table1_title(period: tuple[int, int]) -> str:
    return (
        "Table 1. Main characteristics of firms engaged in offshore outsourcing and "
        f"offshoring activities (average values over the {period_text(period)} period)"
    )


def table1_display(
    protected: sdc.ProtectedTable, period: tuple[int, int], *, source: DataSource
) -> DisplayTable:
    fmts = {s.key: s.fmt for s in TABLE1_ROWS}
    rows = rows_from_protected(protected, [(s.key, s.label) for s in TABLE1_ROWS], fmts)
    return DisplayTable(
        name=protected.name,
        title=table1_title(period),
        header=sector_type_header(),
        rows=rows,
        notes=[
            "Number of firms: yearly average. Duration: mean length in years of the "
            "activity spells overlapping the period. Money amounts in EUR.",
            *legend_notes(protected, rows),
        ],
        source=_source_line(source),
        sdc=protected,
    )


def table1(
    con: Any,
    rules: sdc.Rules,
    start_year: int,
    end_year: int | None = None,
    *,
    source: DataSource,
) -> DisplayTable:
    """Table 1, protected and ready for `render.write_table` (``.sdc`` holds the mask).

    `start_year`, `end_year`: the specification's ``table1`` (``end_year`` None: the
    latest panel year)."""
    period = table1_period(con, start_year, end_year)
    protected = sdc.protect(table1_cells(con, *period), rules)
    out = table1_display(protected, period, source=source)
    gap = table1_gap_note(con, period)
    if gap:
        out.notes.append(gap)
    return out


def table1_comparison(
    protected: sdc.ProtectedTable,
    period: tuple[int, int],
    *,
    source: DataSource,
    published: Mapping[tuple[str, str], float] | None = None,
    published_period: tuple[int, int] = PUBLISHED_TABLE1_PERIOD,
) -> DisplayTable:
    """The paper's Table 1 beside this run's (protected) values, column by column."""
    published = PUBLISHED_TABLE1 if published is None else published
    header = [
        [(label, 2 * len(TYPES)) for _, label in SECTORS],
        [(label, 2) for _ in SECTORS for _, label in TYPES],
        [(h, 1) for _ in SECTORS for _ in TYPES for h in ("Paper", "This run")],
    ]
    rows = []
    for spec in TABLE1_ROWS:
        cells: list[str] = []
        raw: list[Any] = []
        for col in protected.columns:
            pub = published.get((spec.key, col))
            cells.append(spec.fmt(pub) if pub is not None else NO_DATA)
            raw.append(pub)
            text, value = published_cell(protected, spec.key, col, spec.fmt)
            cells.append(text)
            raw.append(value)
        rows.append(DisplayRow(spec.label, cells, raw=raw))
    notes = [
        f"Paper: Canello & Pavone, Table 1 (average values over {period_text(published_period)}). "
        f"This run: average values over {period_text(period)}.",
        *legend_notes(protected, rows, not_applicable="not in the paper's table, or the statistic "
                      "is not collected for this type of firm"),
    ]
    return DisplayTable(
        name=f"{protected.name}_comparison",
        title=f"Table 1: the paper's values ({period_text(published_period)}) and this run's "
              f"({period_text(period)})",
        header=header,
        rows=rows,
        notes=notes,
        source=_source_line(source),
        sdc=protected,
    )


# --------------------------------------------------------------------------- tables 2, 3


@dataclass(frozen=True)
class DummyGroup:
    """One line "<label>: Yes" of a model table: a set of dummy columns of the fit."""

    label: str
    columns: tuple[str, ...] = ()
    prefix: str | None = None  # year dummies are named by the sample (year_2008, ...)

    def present(self, terms: Iterable[str]) -> bool:
        return any(self.covers(t) for t in terms)

    def covers(self, term: str) -> bool:
        return term in self.columns or (self.prefix is not None and term.startswith(self.prefix))


@dataclass(frozen=True)
class ModelTableSpec:
    name: str
    title: str
    rows: tuple[tuple[str, str], ...]  # (exog name, label)
    dummies: tuple[DummyGroup, ...] = ()
    # terms of the fit not shown by design (constant, Mundlak means, variance parameter)
    hidden: frozenset[str] = frozenset()
    estimate_header: str = "Coefficient"
    se_header: str = "Std. err."
    exponentiate: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    period: tuple[int, int] | None = None
    # the published table it is compared with, when not its own name (a companion fit)
    published_as: str | None = None

    @property
    def published(self) -> PublishedTable | None:
        return PUBLISHED.get(self.published_as or self.name)

    def shown_or_hidden(self, term: str) -> bool:
        return (term in self.hidden or any(term == k for k, _ in self.rows)
                or any(g.covers(term) for g in self.dummies))


#: what each dummy source is, named as the paper names it
DUMMY_NAMES = {
    "sector": "Industry dummies",
    "ateco_2007": "Industry dummies (ATECO 2007)",
    "macro_area": "Territorial dummies (macro-areas)",
    "region": "Territorial dummies (regions)",
    "province": "Territorial dummies (provinces)",
    "llma_code": "Territorial dummies (local labour market areas)",
}
YEAR_DUMMIES = "Year dummies"

STARS_NOTE = "*** p<0.01, ** p<0.05, * p<0.1."


def dummy_label(source_column: str) -> str:
    """The table line of a dummy set: "Industry dummies" for sector, ..."""
    if source_column in DUMMY_NAMES:
        return DUMMY_NAMES[source_column]
    return source_column.replace("_", " ").strip().capitalize() + " dummies"


def _dummy_groups(dummies: Mapping[str, Any]) -> list[DummyGroup]:
    out = []
    for src, (_base, levels) in dummies.items():
        out.append(DummyGroup(dummy_label(src), tuple(levels.values())))
    return out


def probit_rows(probit: Any) -> list[str]:
    """The probit's terms shown in Table 2, in the specification's order: its exog terms
    that are not the constant, dummies, Mundlak means or initial values."""
    dummy_cols = {c for _, (_, levels) in probit.dummies.items() for c in levels.values()}
    re_cols = {f"mean_{v}_lag" for v in probit.mundlak} | {f"init_{v}" for v in probit.mundlak}
    return [t for t in probit.exog_names if t != "const" and t not in dummy_cols and t not in re_cols]


#: the placeholder of the initial outcome's year in a probit label ("Initial outcome (y_{initial_year})")
INITIAL_YEAR = "{initial_year}"


def initial_year_of(probit: Any, fit: Any = None) -> int:
    """The year of the initial outcome: the earliest initial period of the fit's firms when the
    fit records it (``sample_initial_year``), else the specification's: its common initial year
    (``initial_period: 2005``), or the year before the first estimation year (each firm's
    initial period is its first year in the panel from that year on,
    `offshoring.econometrics.dynamic.build_dynamic_sample`)."""
    stats = getattr(fit, "stats", None) or {}
    v = stats.get("sample_initial_year") if isinstance(stats, Mapping) else None
    if v is not None:
        try:
            return int(float(v))
        except (TypeError, ValueError):
            pass
    if isinstance(probit.initial_period, int) and not isinstance(probit.initial_period, bool):
        return int(probit.initial_period)
    return int(probit.first_year) - 1


def probit_labels(probit: Any, fit: Any = None) -> dict[str, str]:
    """The probit's row labels with ``{initial_year}`` filled (`initial_year_of`)."""
    year = None
    out = {}
    for term, label in (probit.labels or {}).items():
        label = str(label)
        if INITIAL_YEAR in label:
            year = initial_year_of(probit, fit) if year is None else year
            label = label.replace(INITIAL_YEAR, str(year))
        out[str(term)] = label
    return out


def table2_spec(
    probit: Any,
    period: tuple[int, int],
    *,
    initial_outcome_label: str | None = None,
    fit: Any = None,
) -> ModelTableSpec:
    """Table 2 from the probit specification (a `DynamicSpec`).

    Rows: `probit_rows`, labelled by ``probit.labels`` (the term's name when it has
    none), ``{initial_year}`` in a label filled with the initial outcome's year
    (`initial_year_of`); `initial_outcome_label` (a caller's override, when not empty; it
    may hold ``{initial_year}`` too) replaces the initial outcome's label. One
    "<...> dummies: Yes" line per dummy set of the specification, and "Year dummies" with
    ``year_dummies: true``. `period`: the estimation sample's first and last year
    (`probit_period`). `fit`: the stored fit the table shows; its recorded estimation
    settings (standard errors, quadrature) are named in the notes (the specification's
    where the fit recorded none).
    """
    from offshoring.econometrics.re_probit import SIGMA_NAME
    from offshoring.reports.estimation import fit_settings, settings_note

    labels = probit_labels(probit, fit)
    if initial_outcome_label:
        labels["y_initial"] = str(initial_outcome_label).replace(INITIAL_YEAR, str(initial_year_of(probit, fit)))
    rows = tuple((t, str(labels.get(t, t))) for t in probit_rows(probit))
    groups = _dummy_groups(probit.dummies)
    if probit.year_dummies:
        groups.append(DummyGroup(YEAR_DUMMIES, prefix="year_"))
    hidden = {"const", SIGMA_NAME}
    hidden |= {f"mean_{v}_lag" for v in probit.mundlak}
    hidden |= {f"init_{v}" for v in probit.mundlak}
    not_shown = ["the constant"]
    if probit.mundlak:
        not_shown.append("the firm means of the lagged covariates"
                         + (" and their initial-period values" if probit.initial_values else "")
                         + " (correlated random effect)")
    not_shown.append("ln sigma_u^2")
    settings = fit_settings(fit, probit, "probit")
    link = str(settings.get("link", probit.link))
    model = "Logit" if link == "logit" else "Probit"
    estimation = settings_note(settings, "probit")
    return ModelTableSpec(
        name="table2",
        title=(
            f"Table 2. Dynamic {model} Model: Probability to engage in offshore outsourcing "
            f"among manufacturing firms in Italy, period {period_text(period)}, {INDUSTRIES}"
        ),
        rows=rows,
        dummies=tuple(groups),
        hidden=frozenset(hidden),
        notes=(
            STARS_NOTE,
            f"Random-effects dynamic {model.lower()}; period: the years t of the estimation "
            "sample. Not shown: " + ", ".join(not_shown) + ".",
            *((estimation,) if estimation else ()),
        ),
        period=(int(period[0]), int(period[1])),
    )


def table3_spec(cox: Any, period: tuple[int, int], fit: Any = None, *, estimator: str = "cox") -> ModelTableSpec:
    """Table 3 from the Cox specification (a `CoxSpec`): its covariates in order,
    labelled by its labels, one "<...> dummies: Yes" line per dummy set.
    `period`: the first and last year of the spell-years in the sample (`cox_period`).
    `fit`: the stored fit the table shows; its recorded standard errors and ties method
    are named in the notes (the specification's where the fit recorded none)."""
    from offshoring.reports.estimation import fit_settings, settings_note

    labels = dict(cox.labels or {})
    rows = tuple((c, str(labels.get(c, c))) for c in cox.covariates)
    estimation = settings_note(fit_settings(fit, cox, estimator), estimator)
    return ModelTableSpec(
        name="table3",
        title=(
            "Table 3. Cox PH Model: Relative risks of backshoring among manufacturing firms "
            f"in Italy, period {period_text(period)}, {INDUSTRIES}"
        ),
        rows=rows,
        dummies=tuple(_dummy_groups(cox.dummies)),
        estimate_header="Hazard ratio",
        se_header="Std. err.",
        exponentiate=True,
        notes=(
            STARS_NOTE,
            "Hazard ratios exp(b); standard errors by the delta method (HR x se(b)); "
            "stars test b = 0.",
            *((estimation,) if estimation else ()),
        ),
        period=(int(period[0]), int(period[1])),
    )


def chance_note(n: int, missed: int, level: float = 0.95) -> str:
    """How many of `n` intervals would miss their true value by chance alone: a seed is one
    draw, and a miss or two is what a correct estimator gives (not a sign of error)."""
    from scipy import stats

    p = 1 - level
    upper = int(stats.binom.ppf(0.95, n, p))
    return (f"{missed} of {n} intervals miss the true value. By chance alone about {n * p:.1f} would "
            f"({level:.0%} intervals), and up to {upper} in 95% of seeds: any seed is as good as another.")


def table3_grouped_spec(cox: Any, period: tuple[int, int], fit: Any) -> ModelTableSpec:
    """The companion of Table 3: the same rows as a grouped-time proportional hazard
    (complementary log-log), compared with the paper's Table 3; the per-year intercepts of
    the fit are not shown."""
    base = table3_spec(cox, period, fit, estimator="grouped_ph")
    gammas = frozenset(t for t in fit.params.index if str(t).startswith("gamma_"))
    return dataclasses.replace(
        base, name="table3_grouped", published_as="table3", hidden=base.hidden | gammas,
        title=("Table 3 (companion). Grouped-time proportional hazard (complementary log-log, "
               f"Prentice-Gloeckler): relative risks of backshoring, period {period_text(period)}, "
               f"{INDUSTRIES}"),
        notes=base.notes + ("Exact for annual data: P(end in spell-year d | at risk) = "
                            "1 - exp(-exp(gamma_d + b'x)), one intercept per spell-year (not shown). "
                            "Beside Table 3 it shows how much the Cox model's treatment of tied "
                            "annual ends matters.",))


# --------------------------------------------------------------------------- periods


def _stat_years(fit: Any) -> tuple[int, int] | None:
    """First and last estimation year when the stored fit records them (the model assets'
    ``sample_first_year`` / ``sample_last_year`` fit statistics)."""
    stats = getattr(fit, "stats", None) or {}
    a, b = stats.get("sample_first_year"), stats.get("sample_last_year")
    try:
        return (int(a), int(b)) if a is not None and b is not None else None
    except (TypeError, ValueError):
        return None


def probit_period(con: Any, probit: Any, fit: Any = None) -> tuple[int, int]:
    """Years t of the probit's estimation sample: from the stored fit when it records
    them, else from ``panel.model_panel`` with the specification's years and initial
    period (``sql/report_probit_years.sql``: years with the firm's row in t-1, after
    its initial period)."""
    stored = _stat_years(fit)
    if stored is not None:
        return stored
    initial = probit.initial_period if isinstance(probit.initial_period, int) else None
    df = query(con, "report_probit_years", {
        "first_year": int(probit.first_year),
        "last_year": None if probit.last_year is None else int(probit.last_year),
        "initial_year": initial,
    })
    a, b = df.row(0)[:2]
    if a is None:
        raise ValueError("panel.model_panel has no year of the probit's estimation range")
    return int(a), int(b)


def cox_period(con: Any, cox: Any, fit: Any = None) -> tuple[int, int]:
    """Calendar years of the spell-years in the Cox sample: from the stored fit when it
    records them, else from ``panel.spell_years`` with the specification's destinations
    and left-censoring rule (``sql/report_cox_years.sql``)."""
    stored = _stat_years(fit)
    if stored is not None:
        return stored
    df = query(con, "report_cox_years", {
        "destinations": None if cox.destinations is None else list(cox.destinations),
        "exclude_left_censored": bool(cox.exclude_left_censored),
        "first_spell_year": getattr(cox, "first_spell_year", None),
    })
    a, b = df.row(0)[:2]
    if a is None:
        raise ValueError("panel.spell_years has no row of the Cox model's sample")
    return int(a), int(b)


# --------------------------------------------------------------------------- estimates


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


def _terms(results: Any) -> list[str]:
    params = getattr(results, "params", None)
    return [str(t) for t in getattr(params, "index", [])]


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


def _model_exemption(results: Any, rules: sdc.Rules) -> str:
    """Model estimates pool many firms; refuse a model fitted on fewer than min_firms."""
    if not isinstance(rules, sdc.Rules):
        raise TypeError("a model table needs the disclosure Rules (from the study specification)")
    groups, nobs = ngroups_of(results), nobs_of(results)
    n = groups if groups is not None else nobs
    if n is not None and n < rules.min_firms:
        raise sdc.DisclosureError(
            "model", ("Groups", "n"), sdc.THRESHOLD, f"model fitted on {n} firm(s)"
        )
    return f"model estimates on {n if n is not None else 'an unknown number of'} firms"


def _consistency_notes(results: Any, spec: ModelTableSpec, missing: list[str]) -> list[str]:
    notes = []
    if missing:
        notes.append(f"{NO_DATA}: not in this model's results (" + ", ".join(missing) + ").")
    extra = [t for t in _terms(results) if not spec.shown_or_hidden(t)]
    if extra:
        notes.append("In the model's results but not in the specification of this table: "
                     + ", ".join(extra) + " (fitted with another specification?).")
    return notes


def model_table(
    results: Any,
    spec: ModelTableSpec,
    *,
    digits: int,
    rules: sdc.Rules,
    source: DataSource,
) -> DisplayTable:
    """Table 2 or 3 in the paper's layout: estimate with stars, standard error,
    the dummies lines, Observations and Groups (counts from the fit)."""
    rows: list[DisplayRow] = []
    missing = []
    for key, label in spec.rows:
        est = estimate(results, key, spec.exponentiate)
        if est is None:
            missing.append(key)
            rows.append(DisplayRow(label, [NO_DATA, NO_DATA], raw=[None, None]))
            continue
        rows.append(
            DisplayRow(
                label,
                [fmt_number(est.value, digits) + stars(est.pvalue), fmt_number(est.value_se, digits)],
                raw=[round(est.value, 6), None if est.value_se is None else round(est.value_se, 6)],
            )
        )
    terms = _terms(results)
    for i, group in enumerate(spec.dummies):
        text = "Yes" if group.present(terms) else "No"
        rows.append(DisplayRow(group.label, [text, ""], rule_above=i == 0, raw=[text, None]))
    counts = (("Observations", nobs_of(results)), ("Groups", ngroups_of(results)))
    for i, (label, n) in enumerate(counts):
        rows.append(DisplayRow(label, [fmt_number(n, 0) if n is not None else NO_DATA, ""],
                               rule_above=i == 0, raw=[n, None]))
    notes = list(spec.notes) + _consistency_notes(results, spec, missing)
    if ngroups_of(results) is None:
        notes.append(f"Groups {NO_DATA}: the model has no groups (standard errors not clustered).")
    return DisplayTable(
        name=spec.name,
        title=spec.title,
        header=[[(spec.estimate_header, 1), (spec.se_header, 1)]],
        rows=rows,
        notes=notes,
        source=_source_line(source),
        sdc_exempt=_model_exemption(results, rules),
    )


def comparison_table(
    results: Any,
    spec: ModelTableSpec,
    published: PublishedTable | None = None,
    truth: Mapping[str, float] | None = None,
    *,
    digits: int,
    rules: sdc.Rules,
    source: DataSource,
    not_comparable: str | None = None,
) -> DisplayTable:
    """Published value, this run's estimate and their difference (estimate - published).

    With `truth` (synthetic data: the generator's parameters, keyed by exog name,
    on the model's parameter scale, i.e. log hazard ratios for Table 3), adds the
    true value on the table's scale and whether the 95% interval b +/- 1.96 se
    covers it.

    `not_comparable`: why this fit's estimates are on another scale than the paper's and the
    generator's (a logit link beside probit values): neither is shown, and the notes say why.
    """
    published = published if published is not None else spec.published
    if not_comparable is not None:
        published, truth = None, None
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
            (f(pub.value) + pub.stars) if pub else NO_DATA,
            f(pub.se) if pub and pub.se is not None else NO_DATA,
            (f(est.value) + stars(est.pvalue)) if est else NO_DATA,
            f(est.value_se) if est and est.value_se is not None else NO_DATA,
            f(diff) if diff is not None else NO_DATA,
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
                cells += [NO_DATA, NO_DATA]
                raw += [None, None]
            else:
                shown = math.exp(t) if spec.exponentiate else float(t)
                covered = None
                if est is not None and est.se is not None:
                    covered = covers(est.param, est.se, float(t))
                cells += [f(shown), NO_DATA if covered is None else ("yes" if covered else "no")]
                raw += [round(shown, 6), covered]
        rows.append(DisplayRow(label, cells, raw=raw))
    for i, (label, pub_n, est_n) in enumerate(
        (
            ("Observations", published.nobs if published else None, nobs_of(results)),
            ("Groups", published.ngroups if published else None, ngroups_of(results)),
        )
    ):
        diff = est_n - pub_n if (est_n is not None and pub_n is not None) else None
        n = lambda v: fmt_number(v, 0) if v is not None else NO_DATA  # noqa: E731
        cells = [n(pub_n), "", n(est_n), "", n(diff)]
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
    if not_comparable is not None:
        notes[0] = not_comparable
    elif any(c == NO_DATA for r in rows for c in r.cells):
        notes.append(f"{NO_DATA}: not published in the paper, or not in this model's results.")
    if truth is not None:
        notes.append("True value: the synthetic generator's parameter; covered: |b - true| <= 1.96 se(b).")
        judged = [r.raw[-1] for r in rows if r.raw and isinstance(r.raw[-1], bool)]
        if judged:
            notes.append(chance_note(len(judged), sum(1 for c in judged if not c)))
    title = spec.title.split(".")[0] + ": published values and this run's estimates"
    if spec.period is not None:
        title += f" ({period_text(spec.period)})"
    return DisplayTable(
        name=f"{spec.name}_comparison",
        title=title,
        header=[[(h, 1) for h in header]],
        rows=rows,
        notes=notes,
        source=_source_line(source),
        sdc_exempt=_model_exemption(results, rules),
    )
