"""Reports layer: Tables 1-3 and Figures 1-2 under reports/, disclosure-safe, with provenance.

Every setting comes from the study specification (`Study`: ``study.spec.reports``,
``.probit``, ``.cox``) and the origin of the data from `Folders.synthetic`; the library
receives them as arguments. Each asset checks every output it would write before
writing any: an unsafe cell fails the blocking ``disclosure_safe`` check (ERROR, counts
of unsafe cells by rule in its metadata, never a value), nothing is written and no
materialization is recorded, so the run fails, downstream outputs wait and the alert
sensor sees the failed check.
"""

from pathlib import Path
from typing import Any, Callable, Iterable

import dagster as dg

from offshoring import settings as app_settings
from offshoring.fitstore import read_fit
from offshoring.reports import figures, html, provenance, render, sdc, tables
from offshoring.reports.source import DataSource
from assets._common import data_source
from assets.models import main_fit_spec
from assets.resources import WRITER_POOL, Folders, Study, Warehouse

GROUP = "reports"
CHECK = "disclosure_safe"


# --------------------------------------------------------------------------- run context


def _source(folders: Folders) -> DataSource:
    """Synthetic or real, as the run was asked (`assets._common.data_source`)."""
    return data_source(folders)


def _provenance(context: dg.AssetExecutionContext, folders: Folders, study: Study,
                source: DataSource, warehouse: Warehouse) -> dict[str, Any]:
    """The step's provenance record (computed once per step, never kept across runs):
    inputs, code, packages, the effective specification whole and its SHA-256, the data's
    origin. The inputs are the files the warehouse was loaded from, with their SHA-256 at
    load time (raw.load_log), not the raw folder as it is now: a delivery replaced in the
    folder but not yet loaded is not what the report's numbers rest on."""
    _check_reports_origin(folders)
    spec = study.spec
    paths = app_settings.Settings().as_dict() | {"raw_dir": str(folders.raw),
                                                 "reports_dir": str(folders.reports),
                                                 "db_path": str(warehouse.database)}
    with warehouse.connect(read_only=True) as con:  # as the report assets read it
        inputs = provenance.loaded_inputs(con)
    return provenance.collect([], spec.as_dict(), spec.sha256, source, context.run_id,
                              spec_files=dict(spec.files), paths=paths, inputs=inputs)


def _check_reports_origin(folders: Folders) -> None:
    """Before an output is written, from the UI or a sensor as from the command line: synthetic
    tables are never written into a folder holding a real run's reports."""
    from offshoring import runstate

    if folders.synthetic:
        real = runstate.reports_origins(folders.reports).get("real")
        if real:
            raise dg.Failure(description=(
                f"The reports folder {folders.reports} holds reports of real data ({real[0]} says so); the "
                f"demo would write synthetic tables over them. Point OFFSHORING_REPORTS_DIR at another "
                f"folder for the demo."))


def _remove_other_origin(folders: Folders, source: DataSource) -> list[str]:
    """A real run's index: outputs another origin left in the folder (the demo's, written there
    before) are removed, so the folder and its index hold this run's outputs only; their names
    are returned for the metadata and the log."""
    removed = []
    for rec in render.read_records(folders.reports):
        origin = (rec.provenance or {}).get("data")
        if origin in ("synthetic", "real") and origin != source.data:
            for name in [*rec.files, rec.sidecar]:
                (folders.reports / name).unlink(missing_ok=True)
            removed.append(rec.name)
    return removed


def _rules(study: Study) -> sdc.Rules:
    return sdc.Rules.from_spec(study.spec.reports.sdc)


# --------------------------------------------------------------------------- the check


def _disclosure_check(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(CHECK, asset=asset, blocking=True,
                             description="no published cell rests on fewer than the minimum "
                                         "number of firms or is dominated by one firm")


def _as_violation(exc: sdc.DisclosureError) -> sdc.Violation:
    return sdc.Violation(exc.table, exc.cell, exc.rule, exc.detail)


def _violations(outputs: Iterable[render.DisplayTable | figures.FigureOutput]) -> list[sdc.Violation]:
    found: list[sdc.Violation] = []
    for out in outputs:
        if isinstance(out, figures.FigureOutput):
            found += sdc.violations(out.protected)
        else:
            found += render.disclosure_violations(out)
    return found


def _failed(found: list[sdc.Violation]) -> dg.AssetCheckResult:
    """The failed check: unsafe cells counted by rule (ints, read by the alert sensor) and
    named by row and column (labels only, never a value)."""
    counts = sdc.count_by_rule(found)
    shown = "; ".join(v.describe() for v in found[:20]) + ("; ..." if len(found) > 20 else "")
    return dg.AssetCheckResult(
        check_name=CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(found)} unsafe cell(s), nothing written: {shown}",
        metadata={"unsafe_cells": len(found), "outputs_written": 0,
                  **{f"unsafe_{rule}": int(n) for rule, n in sorted(counts.items())}},
    )


def _passed(summaries: Iterable[dict[str, Any] | None]) -> dg.AssetCheckResult:
    cells = suppressed = 0
    by_rule: dict[str, int] = {}
    for s in summaries:
        s = s or {}
        cells += int(s.get("n_cells", 0))
        suppressed += int(s.get("n_suppressed", 0))
        for rule, n in (s.get("by_rule") or {}).items():
            by_rule[rule] = by_rule.get(rule, 0) + int(n)
    return dg.AssetCheckResult(
        check_name=CHECK, passed=True,
        metadata={"unsafe_cells": 0, "cells": cells, "suppressed": suppressed,
                  **{f"suppressed_{rule}": n for rule, n in sorted(by_rule.items())}},
    )


def _model_passed(fits: Iterable[tuple[str, Any]], rules: sdc.Rules,
                  summaries: Iterable[dict[str, Any] | None] = ()) -> dg.AssetCheckResult:
    """The passed check of a table of model estimates: what was checked is that every model
    shown rests on at least ``min_firms`` firms (its groups, else its observations); the
    metadata say how many models, the smallest count and what it counts. `summaries`: the
    cell summaries of any protected output written beside it (a figure's points)."""
    counted = []
    for name, fit in fits:
        groups, nobs = tables.ngroups_of(fit), tables.nobs_of(fit)
        n, unit = (groups, "groups") if groups is not None else (nobs, "observations")
        counted.append((n, unit, name))
    known = [c for c in counted if c[0] is not None]
    smallest = min(known, key=lambda c: c[0]) if known else None
    cells = suppressed = 0
    for s in summaries:
        s = s or {}
        cells += int(s.get("n_cells", 0))
        suppressed += int(s.get("n_suppressed", 0))
    meta: dict[str, Any] = {"unsafe_cells": 0, "rule": "threshold on each model's firms",
                            "min_firms": int(rules.min_firms), "models_checked": len(counted)}
    if smallest is not None:
        meta.update({"smallest_model_firms": int(smallest[0]), "counted_as": smallest[1],
                     "smallest_model": smallest[2]})
    if len(counted) == 1 and smallest is not None:
        meta[smallest[1]] = int(smallest[0])
    if cells:
        meta.update({"figure_cells": cells, "figure_suppressed": suppressed})
    text = (f"{len(counted)} model(s) checked: the smallest rests on {smallest[0]} {smallest[1]} "
            f"({smallest[2]}), at least {rules.min_firms}" if smallest is not None
            else f"{len(counted)} model(s) checked; no count of firms recorded")
    if cells:
        text += f"; the figure's {cells} point(s) checked, {suppressed} suppressed"
    return dg.AssetCheckResult(check_name=CHECK, passed=True, description=text + ".", metadata=meta)


def _build(build: Callable[[], Any]) -> tuple[Any, list[sdc.Violation]]:
    """Run a builder; a disclosure refusal inside it (e.g. a model on too few firms) is
    an unsafe result, not a crash."""
    try:
        return build(), []
    except sdc.DisclosureError as exc:
        return None, [_as_violation(exc)]


def _metadata(record: render.OutputRecord, reports_dir: Path, **extra: Any) -> dict[str, Any]:
    meta = {k: (dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v)
            for k, v in record.metadata(reports_dir).items() if v is not None}
    return {**meta, **extra}


def _markdown(table: render.DisplayTable) -> dg.MetadataValue:
    return dg.MetadataValue.md(render.to_markdown(table))


# --------------------------------------------------------------------------- table 1


@dg.asset(group_name=GROUP, kinds={"duckdb", "markdown"}, pool=WRITER_POOL,
          deps=["firm_years", "aida_offshoring", "outsourcing_spells"],
          check_specs=[_disclosure_check("table1")], output_required=False,
          description="Table 1: characteristics of firms in offshore outsourcing and offshoring, "
                      "averages over the specification's period (to the latest year loaded), by "
                      "sector; beside it the paper's Table 1.")
def table1(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders, study: Study):
    cfg = study.spec.reports.table1
    rules, source = _rules(study), _source(folders)
    with warehouse.connect(read_only=True) as con:
        try:
            period = tables.table1_period(con, cfg.start_year, cfg.end_year)
        except tables.Table1PeriodError as exc:
            raise dg.Failure(description=str(exc)) from None
        gap = tables.table1_gap_note(con, period)

        def build():
            t = tables.table1(con, rules, *period, source=source)
            c = tables.table1_comparison(t.sdc, period, source=source)
            if gap:
                c.notes.append(gap)
            return t, c

        built, found = _build(build)
    if not found:
        found = _violations(built)
    if found:
        yield _failed(found)
        return
    main, comparison = built
    prov = _provenance(context, folders, study, source, warehouse)
    record = render.write_table(main, folders.reports, prov, order=10)
    render.write_table(comparison, folders.reports, prov, order=11)
    yield dg.MaterializeResult(metadata=_metadata(
        record, folders.reports, table=_markdown(main), comparison=_markdown(comparison),
        period=tables.period_text(period)))
    yield _passed([main.sdc.summary()])


# --------------------------------------------------------------------------- figures


def _figure_asset(name: str, build: Callable[[Any, Study, sdc.Rules, DataSource], figures.FigureOutput],
                  order: int, description: str, deps: list[str], year_of: Callable[[Study], int]):
    @dg.asset(name=name, group_name=GROUP, kinds={"duckdb", "matplotlib"},
              deps=deps, check_specs=[_disclosure_check(name)],
              pool=WRITER_POOL, output_required=False, description=description)
    def _figure(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders, study: Study):
        rules, source = _rules(study), _source(folders)
        with warehouse.connect(read_only=True) as con:
            try:
                tables.require_data_year(con, year_of(study), f"{name}.year")
            except tables.Table1PeriodError as exc:
                raise dg.Failure(description=str(exc)) from None
            out, found = _build(lambda: build(con, study, rules, source))
        if not found:
            found = _violations([out])
        if found:
            yield _failed(found)
            return
        record = figures.write_figure(out, folders.reports,
                                      _provenance(context, folders, study, source, warehouse), order=order)
        png = folders.reports / f"{out.name}.png"
        svg = folders.reports / f"{out.name}.svg"
        yield dg.MaterializeResult(metadata=_metadata(
            record, folders.reports,
            figure_data=_markdown(out.data), caption=out.caption,
            png=dg.MetadataValue.path(str(png)), svg=dg.MetadataValue.path(str(svg))))
        yield _passed([out.protected.summary()])

    return _figure


def _figure1(con, study: Study, rules: sdc.Rules, source: DataSource) -> figures.FigureOutput:
    return figures.figure1(con, study.spec.reports.figure1.year, rules, source=source)


def _figure2(con, study: Study, rules: sdc.Rules, source: DataSource) -> figures.FigureOutput:
    cfg = study.spec.reports.figure2
    return figures.figure2(con, cfg.year, rules, geo_year=cfg.geo_year,
                           simplify_tolerance=cfg.simplify_tolerance, classes=list(cfg.classes),
                           source=source)


figure1 = _figure_asset("figure1", _figure1, 20,
                        "Figure 1: destination regions of offshore outsourcing and offshoring by "
                        "sector in the specification's year (figure1.year), with the paper's values "
                        "where its text gives them.",
                        ["firm_years", "aida_offshoring"], lambda study: study.spec.reports.figure1.year)
figure2 = _figure_asset("figure2", _figure2, 30,
                        "Figure 2: map of Italian provinces with the firms of each type and sector "
                        "in the specification's year (figure2.year).",
                        ["firm_years", "aida_offshoring"], lambda study: study.spec.reports.figure2.year)


# --------------------------------------------------------------------------- tables 2, 3


def _table2_spec(con, study: Study, fit) -> tables.ModelTableSpec:
    period = tables.probit_period(con, study.spec.probit, fit)
    return tables.table2_spec(study.spec.probit, period, fit=fit)


def _table3_spec(con, study: Study, fit) -> tables.ModelTableSpec:
    return tables.table3_spec(study.spec.cox, tables.cox_period(con, study.spec.cox, fit), fit)


#: the estimator of each of the pipeline's own fits (what `assets.models.main_fit_spec` records)
_ESTIMATORS = {"outsourcing_probit": "probit", "backshoring_cox": "cox", "backshoring_grouped_ph": "grouped_ph"}


def refuse_stale_fit(fit, model: str, current: dict, table: str, *, spec_sha256: str,
                     asset: str | None = None) -> None:
    """Refuse (`dg.Failure`) to show `fit` when the part of the specification its estimates
    depend on (`offshoring.variants.fit_spec`: model settings without labels, thresholds,
    panel, districts) differs from the current one. A fit made before it recorded that part
    is compared by its whole specification hash (`spec_sha256`: the current one); a fit that
    records neither (written by hand) is shown. Report settings (labels, digits, titles) may differ: the table is rendered."""
    from offshoring.variants import fit_spec_differences, fit_spec_sha256

    stats = getattr(fit, "stats", None) or {}
    recorded, whole = stats.get("fit_spec_sha256"), stats.get("spec_sha256")
    current_sha = fit_spec_sha256(current)
    asset = asset or model
    if recorded is not None:
        if str(recorded) == current_sha:
            return
        diff = fit_spec_differences(stats.get("fit_spec_json"), current)
        what = (f" It differs from the current one in: {', '.join(diff[:8])}"
                + (", ..." if len(diff) > 8 else "") + ".") if diff else ""
        made = f"the model settings {str(recorded)[:12]}"
    elif whole is not None and str(whole) != spec_sha256:
        what = " (That fit predates the record of its model settings, so they cannot be compared.)"
        made = "an earlier specification"
    else:
        return
    when = f" on {stats['fitted_at']}" if stats.get("fitted_at") else ""
    whole_text = f" (specification {str(whole)[:12]})" if whole is not None else ""
    raise dg.Failure(description=(
        f"{table} was not written: the fit {model} was made{when} under {made}{whole_text}, not "
        f"under the current specification's model settings ({current_sha[:12]}).{what} "
        f"Re-materialize {asset} (and then {table}) under the current settings, or run "
        f"`offshoring run`."))


def refuse_fit_of_other_data(con, fit, model: str, table: str, *, asset: str | None = None,
                             hashes: dict[str, str | None] | None = None) -> None:
    """Refuse (`dg.Failure`) to show `fit` when a table it was made from (the ``table ...``
    parts of its recorded input fingerprint: the model panel, the spell-years, or the raw tables
    a rebuilt panel reads) no longer holds what it held at the fit: a new or corrected delivery
    loaded and the panel rebuilt, but the fit not redone (the table alone re-materialized from
    the UI). The table's provenance lists the warehouse's current inputs, so its estimates would
    be attributed to data they were not computed from. A fit that records no fingerprint (written
    by hand) is shown. `hashes`: table hashes already computed in this step (shared by a
    robustness table's columns)."""
    import json

    from offshoring.variants import table_part

    stats = getattr(fit, "stats", None) or {}
    try:
        parts = json.loads(stats.get("input_fingerprint_parts") or "{}")
    except (TypeError, ValueError):
        parts = {}
    hashes = {} if hashes is None else hashes
    changed = []
    for key, recorded in sorted(parts.items()):
        if not key.startswith("table "):
            continue
        source = key[len("table "):]
        if source not in hashes:
            try:
                hashes[source] = table_part(con, source)
            except Exception:  # noqa: BLE001 - the table is gone: not what the fit was made from
                hashes[source] = None
        if hashes[source] != recorded:
            changed.append(source)
    if not changed:
        return
    when = f" on {stats['fitted_at']}" if stats.get("fitted_at") else ""
    asset = asset or model
    raise dg.Failure(description=(
        f"{table} was not written: the fit {model} was made{when} from {', '.join(changed)} as "
        f"{'they were' if len(changed) > 1 else 'it was'} then, and {'they have' if len(changed) > 1 else 'it has'} "
        f"changed since (a new or corrected delivery loaded, or the panel rebuilt), so its estimates "
        f"are not those of the data the table's provenance lists. Re-materialize {asset} (and then "
        f"{table}), or run `offshoring run`."))


#: the link of the paper's Table 2 and of the generator's outcome equation
_PAPER_LINK = "probit"


def _other_scale(fit, study: Study, model: str) -> str | None:
    """Why the fit's coefficients cannot be set beside the paper's and the generator's: a
    Table 2 fitted with another link than the probit has coefficients on another scale
    (a logit's are about 1.6-1.8 times a probit's), so a difference or a 'covered: no'
    would say the estimator is off when only the scale is."""
    if model != "outsourcing_probit":
        return None
    link = str(fit.stats.get("link") or study.spec.probit.link)
    if link == _PAPER_LINK:
        return None
    return (f"This fit uses a {link} link (probit_table2.yaml: link): the paper's estimates and the "
            f"synthetic generator's true values are {_PAPER_LINK} coefficients, on another scale, so "
            f"neither is shown beside it. Set link: {_PAPER_LINK} to compare.")


def _model_asset(name: str, model: str, spec_fn, order: int, description: str):
    @dg.asset(name=name, group_name=GROUP, kinds={"duckdb", "markdown"},
              deps=[model], check_specs=[_disclosure_check(name)],
              pool=WRITER_POOL, output_required=False, description=description)
    def _table(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders, study: Study):
        rules, source = _rules(study), _source(folders)
        digits = study.spec.reports.format.digits
        with warehouse.connect(read_only=True) as con:
            fit = read_fit(con, model)
            refuse_stale_fit(fit, model, main_fit_spec(study, _ESTIMATORS[model]), name,
                             spec_sha256=study.spec.sha256)
            refuse_fit_of_other_data(con, fit, model, name)
            spec = spec_fn(con, study, fit)
        # true values belong to the synthetic demo only
        truth = (fit.truth or None) if folders.synthetic else None
        other_scale = _other_scale(fit, study, model)

        def build():
            main = tables.model_table(fit, spec, digits=digits, rules=rules, source=source)
            comparison = tables.comparison_table(fit, spec, truth=truth, digits=digits, rules=rules,
                                                 source=source, not_comparable=other_scale)
            return main, comparison

        built, found = _build(build)
        if not found:
            found = _violations(built)
        if found:
            yield _failed(found)
            return
        main, comparison = built
        fit_sha = fit.stats.get("spec_sha256")
        if fit_sha is not None and fit_sha != study.spec.sha256:
            context.log.info(f"{model} was fitted under another specification ({str(fit_sha)[:12]}) "
                             f"than this step's ({study.spec.sha256[:12]}) with the same model settings "
                             "(labels or report settings changed)")
        prov = _provenance(context, folders, study, source, warehouse)
        record = render.write_table(main, folders.reports, prov, order=order)
        render.write_table(comparison, folders.reports, prov, order=order + 1)
        yield dg.MaterializeResult(metadata=_metadata(
            record, folders.reports, table=_markdown(main), comparison=_markdown(comparison),
            period=tables.period_text(spec.period), nobs=int(fit.nobs),
            **({"fit_spec_sha256": str(fit_sha)} if fit_sha is not None else {}),
            **({"ngroups": int(fit.ngroups)} if fit.ngroups is not None else {})))
        yield _model_passed([(model, fit)], rules)

    return _table


table2 = _model_asset("table2", "outsourcing_probit", _table2_spec, 40,
                      "Table 2: dynamic random-effects probit of offshore outsourcing, in the "
                      "paper's layout (rows, labels and dummies from the probit specification, "
                      "period from its estimation sample), with the comparison to the published "
                      "estimates.")
def _table3_grouped_spec(con, study: Study, fit) -> tables.ModelTableSpec:
    return tables.table3_grouped_spec(study.spec.cox, tables.cox_period(con, study.spec.cox, fit), fit)


table3_grouped = _model_asset("table3_grouped", "backshoring_grouped_ph", _table3_grouped_spec, 55,
                              "Table 3's companion: the grouped-time proportional hazard "
                              "(complementary log-log) with Table 3's rows, beside the paper's Table 3.")
table3 = _model_asset("table3", "backshoring_cox", _table3_spec, 50,
                      "Table 3: Cox model of backshoring (hazard ratios), in the paper's layout "
                      "(rows, labels and dummies from the Cox specification), with the comparison "
                      "to the published estimates.")


# --------------------------------------------------------------------------- index


@dg.asset(group_name=GROUP, kinds={"html"},
          deps=["table1", "figure1", "figure2", "table2", "table3", "table3_grouped",
                "table2_robustness", "table3_robustness"],
          description="reports/index.html: every table and figure with its provenance, offline.")
def report_index(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders, study: Study):
    source = _source(folders)
    removed = _remove_other_origin(folders, source)
    if removed:
        context.log.warning(f"removed outputs of another origin left in {folders.reports}: {', '.join(removed)}")
    path = html.write_index(folders.reports, None, _provenance(context, folders, study, source, warehouse),
                            source=source)
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                          "outputs": len(render.read_records(folders.reports)),
                                          "removed_other_origin": ", ".join(removed) or "none",
                                          "data": source.data, "source": source.line()})
