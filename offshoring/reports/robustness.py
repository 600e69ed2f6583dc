"""Robustness of Tables 2 and 3: named specification variants side by side, and their curve.

The model assets fit each variant of the Table 2 probit or the Table 3 Cox model and store
it (`offshoring.fitstore.write_fit`); the report assets read them back (`read_fit`) and
hand them here as `VariantColumn`s, the baseline first. Nothing here fits a model or reads
a settings file: the table layout (`ModelTableSpec` of the baseline, from
`tables.table2_spec` / `tables.table3_spec`), the disclosure rules, the digits and the
origin of the data (`DataSource`) are arguments.

`robustness_table` lays the variants out as a paper's robustness table: one column per
variant ("(1)", "(2)", ... over its name), the estimate with stars and beneath it the
standard error in parentheses, on the scale of the standalone table (hazard ratios for
Table 3, exactly as `tables.estimate` gives them), the dummies lines, Observations, Groups
and the log likelihood. Rows are the baseline table's terms, then any term some variant
fitted that the table would not otherwise show (so nothing fitted is dropped silently),
except what a model table never shows (constant, Mundlak means and initial values,
ln sigma_u^2, per-spell-year intercepts) and dummy sets, which get a "Yes"/"No" line.

`specification_curve` draws, per term, the estimate and its 95% interval in every fitted
variant, sorted by estimate, the baseline marked: a `figures.FigureOutput`, written by
`figures.write_figure` like Figures 1 and 2 (PNG, SVG, data CSV, sidecar).

Disclosure: model estimates pool many firms; like `tables.model_table`, a table or figure
with a variant fitted on fewer than ``rules.min_firms`` firms (groups, else observations)
refuses (`sdc.DisclosureError`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from offshoring.reports import figures, sdc
from offshoring.reports.figures import FigureOutput
from offshoring.reports.render import (
    NO_DATA,
    DisplayRow,
    DisplayTable,
    fmt_number,
    stars,
)
from offshoring.reports.source import DataSource
from offshoring.reports.tables import (
    DUMMY_NAMES,
    STARS_NOTE,
    YEAR_DUMMIES,
    DummyGroup,
    ModelTableSpec,
    estimate,
    ngroups_of,
    nobs_of,
    period_text,
)

#: the two-sided 95% normal quantile of the intervals drawn
Z95 = 1.96
#: terms no model table shows (exact names) and the note that says so
_HIDDEN_NAMES = {
    "const": "the constant",
    "lnsig2u": "ln sigma_u^2",
}
#: terms no model table shows (by prefix) and the note that says so
_HIDDEN_PREFIXES = {
    "mean_": "the firm means of the lagged covariates (correlated random effect)",
    "init_": "the initial-period values of the lagged covariates (correlated random effect)",
}
_INTERCEPTS = ("gamma_", "the per-spell-year intercepts of the grouped-time model")
#: dummy sets recognised by the names of their columns (a variant's own dummies)
_AUTO_DUMMY_SOURCES = ("sector", "ateco_2007", "macro_area", "region", "province", "llma_code")

BASELINE_COLOUR = "#c0392b"
VARIANT_COLOUR = "#2b6ca3"


@dataclass(frozen=True)
class VariantColumn:
    """One specification of the robustness table.

    name         short name, printed under the column number ("baseline", "logit")
    description  one sentence, printed in the column's footnote
    fit          a stored fit (`offshoring.fitstore.StoredFit`) or any statsmodels-like
                 results (params, bse, pvalues, nobs, ngroups; ``stats['llf']`` or ``.llf``);
                 None: the variant was not fitted
    reason       why it was not fitted (shown in the footnote when `fit` is None)
    estimator    ``probit``, ``cox`` or ``grouped_ph`` (which settings its notes name)
    settings     its estimation settings (`estimation.fit_settings`: standard errors,
                 quadrature, ties), named in the table's notes column by column
    """

    name: str
    description: str
    fit: Any | None
    reason: str | None = None
    estimator: str | None = None
    settings: Mapping[str, Any] | None = None


# --------------------------------------------------------------------------- helpers


def _source_line(source: DataSource) -> str:
    if not isinstance(source, DataSource):
        raise TypeError("a report needs its DataSource (synthetic or real data), passed in by the caller")
    return source.line()


def _check_columns(columns: Sequence[VariantColumn]) -> list[VariantColumn]:
    cols = list(columns)
    if not cols:
        raise ValueError("a robustness table needs at least one column (the baseline first)")
    names = [c.name for c in cols]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"variant names must be unique: {', '.join(dupes)}")
    for c in cols:
        if not isinstance(c, VariantColumn):
            raise TypeError(f"expected VariantColumn, got {type(c).__name__}")
    return cols


def _terms(fit: Any) -> list[str]:
    params = getattr(fit, "params", None)
    return [str(t) for t in getattr(params, "index", [])]


def n_firms_of(fit: Any) -> int | None:
    """The firms a fit rests on: its groups, else its observations (as `tables`)."""
    groups = ngroups_of(fit)
    return groups if groups is not None else nobs_of(fit)


def llf_of(fit: Any) -> float | None:
    """The log likelihood: ``stats['llf']`` of a stored fit, else ``.llf``."""
    stats = getattr(fit, "stats", None) or {}
    value = stats.get("llf") if isinstance(stats, Mapping) else None
    if value is None:
        value = getattr(fit, "llf", None)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def model_exemption(name: str, columns: Sequence[VariantColumn], rules: sdc.Rules) -> str:
    """The ``sdc_exempt`` text of a table of model estimates, or `sdc.DisclosureError` when a
    fitted variant rests on fewer than ``rules.min_firms`` firms."""
    if not isinstance(rules, sdc.Rules):
        raise TypeError("a robustness table needs the disclosure Rules (from the study specification)")
    counts = []
    for col in columns:
        if col.fit is None:
            continue
        n = n_firms_of(col.fit)
        if n is not None and n < rules.min_firms:
            raise sdc.DisclosureError(
                name, (col.name, "Groups"), sdc.THRESHOLD,
                f"variant {col.name!r} fitted on {n} firm(s), fewer than {rules.min_firms}",
            )
        counts.append(n)
    if not counts:
        return "no model estimates (no specification fitted)"
    known = [n for n in counts if n is not None]
    if not known:
        return "model estimates on an unknown number of firms"
    return (f"model estimates on {min(known)} firms (the smallest of "
            f"{len(counts)} fitted specification{'s' if len(counts) != 1 else ''})")


def _hidden(base: ModelTableSpec, term: str) -> str | None:
    """Why `term` is never a row (the note's words), or None when it may be one."""
    if term in _HIDDEN_NAMES:
        return _HIDDEN_NAMES[term]
    for prefix, what in _HIDDEN_PREFIXES.items():
        if term.startswith(prefix):
            return what
    if term.startswith(_INTERCEPTS[0]) and any(str(h).startswith(_INTERCEPTS[0]) for h in base.hidden):
        return _INTERCEPTS[1]
    if term in base.hidden:
        return "other terms the baseline table leaves out"
    return None


def _dummy_lines(base: ModelTableSpec, extra: Sequence[DummyGroup]) -> list[tuple[str, list[DummyGroup], bool]]:
    """(label, groups covering it, always shown) for every dummy line the table may print:
    the baseline's (always), the caller's and those recognised by name (when present)."""
    lines: dict[str, tuple[list[DummyGroup], bool]] = {}
    for g in base.dummies:
        lines.setdefault(g.label, ([], True))[0].append(g)
    for g in extra:
        lines.setdefault(g.label, ([], False))[0].append(g)
    auto = [DummyGroup(DUMMY_NAMES[s], prefix=f"{s}_") for s in _AUTO_DUMMY_SOURCES]
    auto.append(DummyGroup(YEAR_DUMMIES, prefix="year_"))
    for g in auto:
        lines.setdefault(g.label, ([], False))[0].append(g)
    return [(label, groups, always) for label, (groups, always) in lines.items()]


def _covered(groups: Sequence[DummyGroup], term: str) -> bool:
    return any(g.covers(term) for g in groups)


def table_rows(
    base: ModelTableSpec,
    columns: Sequence[VariantColumn],
    *,
    dummy_groups: Sequence[DummyGroup] = (),
    labels: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The (term, label) rows: the baseline table's, then every term some variant fitted that
    is neither a row, a hidden term nor a dummy (in the order first met)."""
    rows = list(base.rows)
    keys = {k for k, _ in rows}
    dummy_groups_all = [g for _, gs, _ in _dummy_lines(base, dummy_groups) for g in gs]
    labels = dict(labels or {})
    for col in columns:
        if col.fit is None:
            continue
        for t in _terms(col.fit):
            if t in keys or _hidden(base, t) is not None or _covered(dummy_groups_all, t):
                continue
            rows.append((t, str(labels.get(t, t))))
            keys.add(t)
    return rows


def initial_outcome_label(template: str, years: Sequence[int | None]) -> str | None:
    """The initial outcome's row label when the columns' initial years differ (`years`: per
    column, None for a column without the term), else None (the baseline's label holds). The
    label's ``{initial_year}`` is filled with the baseline's year and each other year with the
    columns it holds in: "Initial outcome (y_2005; y_2006 in (7))". A label with no
    placeholder gets the years appended."""
    from offshoring.reports.tables import INITIAL_YEAR

    known = [(i, y) for i, y in enumerate(years, start=1) if y is not None]
    if len({y for _, y in known}) <= 1:
        return None
    first = known[0][1]
    others: dict[int, list[int]] = {}
    for i, y in known:
        if y != first:
            others.setdefault(y, []).append(i)
    prefix = "y_" if f"y_{INITIAL_YEAR}" in template else ""
    extra = "; ".join(f"{prefix}{y} in {', '.join(f'({i})' for i in cols)}" for y, cols in sorted(others.items()))
    if INITIAL_YEAR in template:
        return template.replace(INITIAL_YEAR, f"{first}; {extra}")
    return f"{template} ({first}; {extra})"


def _settings_note(cols: Sequence[VariantColumn]) -> str:
    """Which standard errors, quadrature and ties each fitted column used, columns with the
    same settings named together: "Estimation: (1)-(4), (6) ...; (5) ..."."""
    from offshoring.reports.estimation import column_settings_text

    groups: dict[str, list[int]] = {}
    for i, c in enumerate(cols, start=1):
        if c.fit is None or not c.settings:
            continue
        text = column_settings_text(c.settings, c.estimator or "")
        if text:
            groups.setdefault(text, []).append(i)
    if not groups:
        return ""
    if len(groups) == 1 and sum(len(v) for v in groups.values()) == sum(c.fit is not None for c in cols):
        return f"Estimation, every column: {next(iter(groups))}."
    parts = [", ".join(f"({i})" for i in nums) + f": {text}" for text, nums in groups.items()]
    return "Estimation: " + "; ".join(parts) + "."


def _short_title(base: ModelTableSpec) -> str:
    return base.title.split(".")[0].strip() or base.name


# --------------------------------------------------------------------------- table


def robustness_table(
    name: str,
    base: ModelTableSpec,
    columns: Sequence[VariantColumn],
    *,
    digits: int,
    rules: sdc.Rules,
    source: DataSource,
    dummy_groups: Sequence[DummyGroup] = (),
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> DisplayTable:
    """The robustness table of `base` (the baseline's Table 2 or 3 layout) over `columns`
    (the baseline first), ready for `render.write_table`.

    `dummy_groups`: dummy sets of the variants the baseline does not have (e.g. region
    dummies: ``DummyGroup(tables.dummy_label("region"), columns=(...))``); columns named
    ``region_...``, ``province_...``, ``llma_code_...``, ``ateco_2007_...``, ``year_...`` are
    recognised without it. `labels`: labels of the terms beyond the baseline's rows
    (default: the term's name). Raises `sdc.DisclosureError` when a fitted variant rests on
    fewer than ``rules.min_firms`` firms.
    """
    cols = _check_columns(columns)
    exempt = model_exemption(name, cols, rules)
    source_line = _source_line(source)
    n = len(cols)
    f = lambda v: fmt_number(v, digits)

    rows: list[DisplayRow] = []
    shown_rows = table_rows(base, cols, dummy_groups=dummy_groups, labels=labels)
    base_keys = {k for k, _ in base.rows}
    first_extra = next((k for k, _ in shown_rows if k not in base_keys), None)
    for key, label in shown_rows:
        est_cells, se_cells, est_raw, se_raw = [], [], [], []
        for col in cols:
            est = estimate(col.fit, key, base.exponentiate) if col.fit is not None else None
            if est is None:
                est_cells.append(NO_DATA)
                se_cells.append("")
                est_raw.append(None)
                se_raw.append(None)
                continue
            est_cells.append(f(est.value) + stars(est.pvalue))
            est_raw.append(round(est.value, 6))
            if est.value_se is None:
                se_cells.append("")
                se_raw.append(None)
            else:
                se_cells.append(f"({f(est.value_se)})")
                se_raw.append(round(est.value_se, 6))
        rows.append(DisplayRow(label, est_cells, raw=est_raw, rule_above=key == first_extra))
        rows.append(DisplayRow("", se_cells, raw=se_raw))

    first = True
    for label, groups, always in _dummy_lines(base, dummy_groups):
        present = [None if c.fit is None else any(_covered(groups, t) for t in _terms(c.fit)
                                                  if t not in base_keys)
                   for c in cols]
        if not always and not any(present):
            continue
        texts = [NO_DATA if p is None else ("Yes" if p else "No") for p in present]
        rows.append(DisplayRow(label, texts, rule_above=first,
                               raw=[None if p is None else t for p, t in zip(present, texts)]))
        first = False

    nobs = [None if c.fit is None else nobs_of(c.fit) for c in cols]
    groups_n = [None if c.fit is None else ngroups_of(c.fit) for c in cols]
    llfs = [None if c.fit is None else llf_of(c.fit) for c in cols]
    counts = (
        ("Observations", nobs, lambda v: fmt_number(v, 0), lambda v: v),
        ("Groups", groups_n, lambda v: fmt_number(v, 0), lambda v: v),
        ("Log likelihood", llfs, f, lambda v: round(v, 6)),
    )
    for i, (label, values, fmt, raw) in enumerate(counts):
        rows.append(DisplayRow(label, [NO_DATA if v is None else fmt(v) for v in values],
                               rule_above=i == 0,
                               raw=[None if v is None else raw(v) for v in values]))

    notes = [(f"Column (1) is the baseline: the specification of the standalone "
             f"{_short_title(base)}; the other columns are the variants described below.")]
    for i, col in enumerate(cols, start=1):
        text = f"({i}) {col.name}: {col.description.strip()}"
        if col.fit is None:
            text = text.rstrip(".") + f". Not fitted: {col.reason or 'no reason given'}."
        notes.append(text)
    notes.append(STARS_NOTE)
    if base.exponentiate:
        notes.append("Hazard ratios exp(b); standard errors (in parentheses) by the delta method "
                     "(HR x se(b)); stars test b = 0.")
    else:
        notes.append("Coefficients; standard errors in parentheses.")
    estimation = _settings_note(cols)
    if estimation:
        notes.append(estimation)
    not_shown: list[str] = []
    for c in cols:
        for t in _terms(c.fit) if c.fit is not None else []:
            why = _hidden(base, t)
            if why is not None and why not in not_shown:
                not_shown.append(why)
    if not_shown:
        notes.append("Not shown: " + ", ".join(not_shown) + ".")
    extra = [label for k, label in shown_rows if k not in base_keys]
    if extra:
        notes.append("Rows below the baseline's: terms fitted by some variant only ("
                     + ", ".join(extra) + ").")
    if any(c == NO_DATA for r in rows for c in r.cells):
        notes.append(f"{NO_DATA}: not in the variant's model, or the variant was not fitted.")
    if any(g is None for g, c in zip(groups_n, cols) if c.fit is not None):
        notes.append(f"Groups {NO_DATA} for a fitted variant: the model has no groups "
                     "(standard errors not clustered).")

    head = _short_title(base)
    rest = base.title[len(head):].lstrip(". ").strip()
    default_title = f"{head} (robustness). {rest}" if rest else f"{head} (robustness)"
    default_title += f", {n} specification{'s' if n != 1 else ''}"
    return DisplayTable(
        name=name,
        title=title or default_title,
        header=[[(f"({i})", 1) for i in range(1, n + 1)], [(c.name, 1) for c in cols]],
        rows=rows,
        notes=notes,
        source=source_line,
        sdc_exempt=exempt,
    )


# --------------------------------------------------------------------------- curve

CURVE_COLUMNS = ("term", "variant", "estimate", "low", "high", "is_baseline", "n_firms")


def curve_terms(base: ModelTableSpec, columns: Sequence[VariantColumn]) -> list[str]:
    """The default terms of the curve: the baseline table's rows the baseline fit has (the
    first fitted variant when the baseline is not fitted)."""
    ref = next((c.fit for c in columns if c.fit is not None), None)
    if ref is None:
        return []
    return [k for k, _ in base.rows if estimate(ref, k) is not None]


def specification_curve_data(
    base: ModelTableSpec,
    columns: Sequence[VariantColumn],
    terms: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per term and fitted variant with the term: ``term, variant, estimate, low,
    high, is_baseline, n_firms``, on the table's scale (hazard ratios: exp of the log-scale
    interval b +/- 1.96 se), sorted by estimate within term (terms in the given order)."""
    cols = _check_columns(columns)
    terms = list(terms) if terms is not None else curve_terms(base, cols)
    records = []
    for ti, term in enumerate(terms):
        found = []
        for ci, col in enumerate(cols):
            if col.fit is None:
                continue
            est = estimate(col.fit, term, base.exponentiate)
            if est is None:
                continue
            if est.se is None:
                lo = hi = None
            else:
                lo, hi = est.param - Z95 * est.se, est.param + Z95 * est.se
                if base.exponentiate:
                    lo, hi = math.exp(lo), math.exp(hi)
            found.append({"term": term, "variant": col.name, "estimate": est.value, "low": lo,
                          "high": hi, "is_baseline": ci == 0, "n_firms": n_firms_of(col.fit),
                          "_t": ti, "_c": ci})
        records += sorted(found, key=lambda r: (r["estimate"], r["_c"]))
    df = pd.DataFrame.from_records(records, columns=[*CURVE_COLUMNS, "_t", "_c"])
    return df.drop(columns=["_t", "_c"]).reset_index(drop=True)


def _curve_protected(name: str, df: pd.DataFrame, cols: Sequence[VariantColumn],
                     rules: sdc.Rules) -> sdc.ProtectedTable:
    """The figure's points as cells (a point rests on its model's firms), protected."""
    terms = list(dict.fromkeys(df["term"]))
    variants = [c.name for c in cols]
    cells = {}
    for r in df.itertuples(index=False):
        # an unknown count (a fit without nobs) is taken as no count: the model exemption
        # (`model_exemption`) already judged it, as `tables.model_table` does
        n = 0 if r.n_firms is None or pd.isna(r.n_firms) else int(r.n_firms)
        cells[(r.term, r.variant)] = sdc.Cell(float(r.estimate), sdc.FREQUENCY, n_firms=n)
    return sdc.protect(sdc.CellTable(name, terms, variants, cells), rules)


def _curve_display(name: str, title: str, df: pd.DataFrame, protected: sdc.ProtectedTable,
                   source: DataSource, labels: Mapping[str, str], notes: list[str]) -> DisplayTable:
    def num(v: Any) -> str:
        return "" if v is None or pd.isna(v) else fmt_number(float(v), 6)

    rows = []
    for r in df.itertuples(index=False):
        n = None if r.n_firms is None or pd.isna(r.n_firms) else int(r.n_firms)
        raw = [r.variant,
               None if pd.isna(r.estimate) else round(float(r.estimate), 6),
               None if r.low is None or pd.isna(r.low) else round(float(r.low), 6),
               None if r.high is None or pd.isna(r.high) else round(float(r.high), 6),
               bool(r.is_baseline), n]
        cells = [r.variant, num(r.estimate), num(r.low), num(r.high),
                 "yes" if r.is_baseline else "no", "" if n is None else fmt_number(n, 0)]
        rows.append(DisplayRow(r.term, cells, raw=raw))
    return DisplayTable(
        name=f"{name}_data",
        title=title,
        header=[[(c, 1) for c in CURVE_COLUMNS[1:]]],
        rows=rows,
        stub=CURVE_COLUMNS[0],
        notes=notes,
        source=_source_line(source),
        sdc=protected,
    )


def _curve_plot(title: str, df: pd.DataFrame, terms: list[str], labels: Mapping[str, str],
                base: ModelTableSpec, baseline_name: str, source: DataSource):
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    n = max(1, len(terms))
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    height = 3.2 * nrows + 0.9
    fig = Figure(figsize=(4.2 * ncols, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    ref = 1.0 if base.exponentiate else 0.0
    for k, ax in enumerate(axes.flat):
        if k >= len(terms):
            ax.set_axis_off()
            continue
        term = terms[k]
        sub = df[df["term"] == term].reset_index(drop=True)
        x = list(range(len(sub)))
        for i, r in sub.iterrows():
            colour = BASELINE_COLOUR if r["is_baseline"] else VARIANT_COLOUR
            if r["low"] is not None and not pd.isna(r["low"]):
                ax.plot([i, i], [r["low"], r["high"]], color=colour, linewidth=1.4,
                        solid_capstyle="butt")
            (pt,) = ax.plot([i], [r["estimate"]], linestyle="none",
                            marker="D" if r["is_baseline"] else "o",
                            markersize=7 if r["is_baseline"] else 5, color=colour, zorder=3)
            pt.set_gid(f"point-{term}-{r['variant']}")
        ax.axhline(ref, color="#888888", linewidth=0.7, linestyle="--")
        ax.set_xticks(x, list(sub["variant"]), rotation=45, ha="right", fontsize=7)
        ax.set_xlim(-0.6, max(len(sub) - 0.4, 0.6))
        ax.set_title(str(labels.get(term, term)), fontsize=9)
        ax.grid(axis="y", linewidth=0.4, alpha=0.5)
        ax.set_axisbelow(True)
        ax.tick_params(axis="y", labelsize=7)
    scale = "Hazard ratio" if base.exponentiate else "Coefficient"
    for ax in axes[:, 0]:
        ax.set_ylabel(scale, fontsize=8)
    handles = [
        Line2D([], [], color=BASELINE_COLOUR, marker="D", markersize=7, linewidth=1.4,
               label=(f"(1) {baseline_name}" + ("" if baseline_name == "baseline" else ", the baseline")
                      + ", 95% interval")),
        Line2D([], [], color=VARIANT_COLOUR, marker="o", markersize=5, linewidth=1.4,
               label="other specifications, 95% interval"),
    ]
    # the legend between the panels and the source line (inches turned into fractions)
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.22 / height), ncol=2,
               fontsize=8, frameon=False)
    fig.suptitle(title)
    figures._foot(fig, source, bottom=0.6 / height)
    return fig


def specification_curve(
    name: str,
    base: ModelTableSpec,
    columns: Sequence[VariantColumn],
    *,
    terms: Sequence[str] | None = None,
    rules: sdc.Rules,
    source: DataSource,
    labels: Mapping[str, str] | None = None,
    title: str | None = None,
) -> FigureOutput:
    """The specification curve of `columns` (the baseline first), for `figures.write_figure`.

    One panel per term (default: the baseline table's rows the baseline fit has), the
    estimate and its 95% interval in every fitted variant sorted by estimate, the baseline
    marked. ``.data`` is the figure's data (``term, variant, estimate, low, high,
    is_baseline, n_firms``, written as ``<name>_data.csv``). Raises `sdc.DisclosureError`
    when a fitted variant rests on fewer than ``rules.min_firms`` firms.
    """
    cols = _check_columns(columns)
    model_exemption(name, cols, rules)
    if not isinstance(source, DataSource):
        raise TypeError("a figure needs its DataSource (synthetic or real data), passed in by the caller")
    df = specification_curve_data(base, cols, terms)
    shown_terms = list(dict.fromkeys(df["term"])) if terms is None else [
        t for t in terms if (df["term"] == t).any()]
    if not shown_terms:
        raise ValueError(f"{name}: no term of the curve is in any fitted specification")
    term_labels = {k: label for k, label in base.rows}
    term_labels.update(labels or {})
    head = _short_title(base)
    period = f", period {period_text(base.period)}" if base.period is not None else ""
    fig_title = title or f"{head} robustness: specification curve{period}"
    scale = ("hazard ratios exp(b), interval exp(b +/- 1.96 se(b))" if base.exponentiate
             else "coefficients, interval b +/- 1.96 se(b)")
    not_fitted = [f"{c.name} ({c.reason or 'no reason given'})" for c in cols if c.fit is None]
    notes = [(f"Estimates and 95% intervals ({scale}) of each term across the fitted specifications, "
             f"sorted by estimate; is_baseline: column (1) of the robustness table, "
             f"{cols[0].name}. n_firms: the model's firms (groups, else observations).")]
    if not_fitted:
        notes.append("Not fitted, not drawn: " + "; ".join(not_fitted) + ".")
    protected = _curve_protected(name, df, cols, rules)
    caption = (f"Specification curve of {head}: per term, the estimate and its 95% interval "
               f"({scale}) in each of {sum(c.fit is not None for c in cols)} fitted "
               f"specifications, sorted by estimate; red diamond: the baseline ({cols[0].name}).")
    if not_fitted:
        caption += " Not fitted: " + "; ".join(not_fitted) + "."
    return FigureOutput(
        name=name,
        title=fig_title,
        figure=_curve_plot(fig_title, df, shown_terms, term_labels, base, cols[0].name, source),
        protected=protected,
        data=_curve_display(name, f"{fig_title} (data)", df, protected, source, term_labels, notes),
        caption=f"{caption} {source.caption_suffix()}",
        info={"data": source.data, "terms": shown_terms,
              "variants": [c.name for c in cols],
              "not_fitted": [{"variant": c.name, "reason": c.reason} for c in cols if c.fit is None]},
    )
