"""Robustness: the named variants of Tables 2 and 3 fitted side by side, as a paper's columns.

One asset per variant (``table2_variant_<name>``, ``table3_variant_<name>``), built from
the variant files of the study specification when the definitions load (a file dropped in
the user's ``variants/table2/`` adds an asset at the next run, or at the UI's next reload).
Each fits its variant and stores it in ``models.*`` under its asset name, unless its
fingerprint (code, effective specification, input tables, district list) equals the
stored one: then nothing is refitted. The baseline and the grouped-time companion are the
pipeline's own fits (``outsourcing_probit``, ``backshoring_cox``,
``backshoring_grouped_ph``) and are read, never refitted.

``table2_robustness`` and ``table3_robustness`` write the columns (1) baseline, (2) ...
as Markdown, LaTeX and CSV, and a specification-curve figure, under the same disclosure
check and provenance as the other reports.
"""


import dataclasses
from pathlib import Path
from typing import Any

import dagster as dg

from assets._common import frame_table, with_origin
from assets.models import _coef_markdown, fit_stamp, log_refit
from assets.reports import (_build, _disclosure_check, _failed, _markdown, _metadata, _model_passed,
                            _provenance, _rules, _source, _violations, refuse_fit_of_other_data,
                            refuse_stale_fit)
from assets.resources import WRITER_POOL, Folders, Study, Warehouse
from offshoring.econometrics.errors import EstimationError
from offshoring.fitstore import COEF_DDL, STATS_DDL, read_fit, restamp, write_fit
from offshoring.reports import figures, render, robustness, tables
from offshoring.reports.estimation import fit_settings
from offshoring.variants import (TABLES, Variant, VariantNotFitted, fingerprint, fit_spec_record, fit_variant,
                                 spec_differences, stored_fingerprint)

GROUP = "robustness"

#: the asset that each table's own fits come from (its dependency)
_MAIN_ASSETS = {"outsourcing_probit", "backshoring_cox", "backshoring_grouped_ph"}


def _current(study: Study, table: str, name: str) -> Variant:
    for v in study.spec.variants.get(table, ()):
        if v.name == name:
            return v
    raise dg.Failure(description=(
        f"The variant '{name}' of {table} is no longer in the study specification (its file was "
        f"removed or disabled); reload the definitions (restart `offshoring ui`, or run again)."))


def _scratch_dir(warehouse: Warehouse) -> Path:
    return Path(warehouse.database).parent / ".variant_scratch"


def _not_fitted(con, model: str, reason: str, fp: str, spec_record: dict[str, str]) -> None:
    """No coefficients, and a row saying why (read by the robustness table), with the
    specification it was tried under (as a later run that finds nothing changed records it:
    the warehouse then equals a fresh run's)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS models")
    con.execute(COEF_DDL)
    con.execute(STATS_DDL)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM models.coefficients WHERE model = ?", [model])
        con.execute("DELETE FROM models.fit_stats WHERE model = ?", [model])
        for stat, text in (("not_fitted", reason), *fit_stamp(fp).items(), *spec_record.items()):
            con.execute("INSERT INTO models.fit_stats VALUES (?, ?, NULL, ?)", [model, stat, text])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def drop_fits_of_removed_variants(warehouse: Warehouse, table: str, current: tuple[Variant, ...]) -> list[str]:
    """Delete from ``models.*`` the fits of this table's variants that the specification no
    longer has (their file removed or disabled): no table shows them, but someone querying
    the warehouse would take them for current results. Returns the models deleted."""
    keep = {v.fit_key for v in current}
    prefix = f"{table}_variant_"
    with warehouse.connect() as con:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'models' "
            "AND table_name IN ('coefficients', 'fit_stats')").fetchall()}
        found: set[str] = set()
        for t in sorted(present):
            found |= {r[0] for r in con.execute(f"SELECT DISTINCT model FROM models.{t} WHERE starts_with(model, ?)",
                                                [prefix]).fetchall()}
        gone = sorted(found - keep)
        if not gone:
            return []
        con.execute("BEGIN TRANSACTION")
        try:
            for t in sorted(present):
                con.execute(f"DELETE FROM models.{t} WHERE list_contains(?, model)", [gone])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return gone


def _variant_asset(variant: Variant) -> dg.AssetsDefinition:
    table, name = variant.table, variant.name
    dep = "model_panel" if table == "table2" else "spell_years"
    label = "estimate" if table == "table2" else "log hazard ratio"

    @dg.asset(name=variant.asset_name, group_name=GROUP, kinds={"duckdb", "python"},
              pool=WRITER_POOL, deps=[dep],
              description=f"{table} variant '{name}': {variant.description} ({variant.file})")
    def _fit(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders, study: Study):
        # every outcome's metadata says what the numbers come from (synthetic or real)
        return with_origin(_fit_variant(context, warehouse, folders, study), folders)

    def _fit_variant(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders,
                     study: Study) -> dg.MaterializeResult:
        current = _current(study, table, name)
        if current.main_fit is not None:
            raise dg.Failure(description=(
                f"The variant '{name}' of {table} ({current.file}) no longer differs from the pipeline's "
                f"own fit {current.main_fit}; reload the definitions (restart `offshoring ui`, or run again)."))
        model = current.fit_key
        base = _baseline(study, table)
        if base is not None and current.same_fit_as(base):
            # nothing to estimate: the robustness table notes it instead of a column; a fit
            # stored earlier stays (its fingerprint says what it was made from)
            context.log.info(f"{model}: identical to the baseline under the current settings; not fitted")
            return dg.MaterializeResult(metadata={"refit": False, "fitted": False,
                                                  "identical_to_baseline": True, "variant_file": current.file,
                                                  "description": current.description})
        with warehouse.connect() as con:
            fp = fingerprint(con, current, folders.raw, folders.origin)
            if stored_fingerprint(con, model) == fp:
                # same inputs and settings: valid under the current specification too (recorded,
                # so the robustness table does not refuse a fit no run would redo)
                restamp(con, model, fit_spec_record(current.fit_spec(study.spec.districts)))
                context.log.info(f"{model}: code, specification and inputs unchanged; not refitted")
                return dg.MaterializeResult(metadata={"refit": False, "input_fingerprint": str(fp),
                                                      "variant_file": current.file})
            log_refit(context, con, model, fp)
            try:
                fit = fit_variant(con, current, folders.raw, study.spec.districts, _scratch_dir(warehouse))
            except (VariantNotFitted, EstimationError) as exc:
                # a robustness column that cannot be estimated is named with the reason in
                # the table's notes; the other columns stand (the baseline failing fails the run)
                if isinstance(exc, EstimationError):
                    exc = VariantNotFitted(f"the estimation failed: {exc}")
                _not_fitted(con, model, str(exc), fp, fit_spec_record(current.fit_spec(study.spec.districts)))
                context.log.warning(f"{model} not fitted: {exc}")
                return dg.MaterializeResult(metadata={"refit": True, "fitted": False, "reason": str(exc),
                                                      "input_fingerprint": str(fp), "variant_file": current.file})
            res = fit.results
            stats = {**fit.stats, "variant": name, "description": current.description,
                     "variant_file": current.file, "spec_sha256": study.spec.sha256,
                     **fit_spec_record(current.fit_spec(study.spec.districts)), **fit_stamp(fp)}
            coef = write_fit(con, model, res.params, res.bse, res.pvalues, nobs=int(res.nobs),
                             ngroups=None if res.ngroups is None else int(res.ngroups), stats=stats)
        labels = getattr(current.model_spec, "labels", {}) or {}
        meta: dict[str, Any] = {
            "refit": True, "fitted": True, "input_fingerprint": str(fp), "variant_file": current.file,
            "description": current.description,
            "coefficients": dg.MetadataValue.md(_coef_markdown(coef, label, labels)),
            "nobs": int(res.nobs), "llf": float(fit.stats["llf"]),
            "fit_seconds": round(float(fit.stats["fit_seconds"]), 2),
        }
        if res.ngroups is not None:
            meta["ngroups"] = int(res.ngroups)
        if fit.stats.get("dropped_dummies"):
            meta["dropped_dummies"] = fit.stats["dropped_dummies"]
        return dg.MaterializeResult(metadata=meta)

    return _fit


# --------------------------------------------------------------------------- the tables


def _baseline(study: Study, table: str) -> Variant | None:
    return next((v for v in study.spec.variants.get(table, ()) if v.is_baseline), None)


def same_estimates(fit, baseline) -> bool:
    """The same sample and the same numbers as the baseline (to rounding): a variant whose
    change does not bite on these data (years pinned to years the data do not go beyond, a
    ceiling of years not loaded). Its column would repeat the baseline under a description
    of a change that was not made."""
    import numpy as np

    if fit.nobs != baseline.nobs or fit.ngroups != baseline.ngroups:
        return False
    if list(fit.params.index) != list(baseline.params.index):
        return False
    close = lambda a, b: bool(np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-9, atol=1e-12,  # noqa: E731
                                          equal_nan=True))
    return close(fit.params, baseline.params) and close(fit.bse, baseline.bse)


def _sample_years_note(v: Variant, fit, base: Variant | None) -> str:
    """Where a variant sets other years than the baseline's and the data hold fewer, the years
    it was estimated on."""
    sp = v.model_spec
    first, last = getattr(sp, "first_year", None), getattr(sp, "last_year", None)
    if base is not None and (first, last) == (getattr(base.model_spec, "first_year", None),
                                              getattr(base.model_spec, "last_year", None)):
        return ""  # the baseline's years: the table's period says them
    got = (fit.stats.get("sample_first_year"), fit.stats.get("sample_last_year"))
    if got[0] is None or got[1] is None or (first is None and last is None):
        return ""
    got = (int(float(got[0])), int(float(got[1])))
    if (first is None or got[0] == int(first)) and (last is None or got[1] == int(last)):
        return ""
    return f" Estimated on {got[0]}-{got[1]}: the data hold no other year of the ones it asks for."


def _columns(con, variants: tuple[Variant, ...], study: Study, table: str,
             hashes: dict[str, str | None], baseline_fit=None) -> tuple[list[robustness.VariantColumn], list[str]]:
    """One column per fitted variant; the ones not fitted (their inputs absent) are left out
    and named in a note, and so are the ones identical to the baseline under the current
    settings. A fit made under other model settings than the variant's current ones is
    refused (`refuse_stale_fit`)."""
    cols, notes = [], []
    base = next((v for v in variants if v.is_baseline), None)
    for v in variants:
        if base is not None and v is not base and v.same_fit_as(base):
            notes.append(f"{v.name}: identical to the baseline under the current settings.")
            continue
        try:
            fit = read_fit(con, v.fit_key)
        except LookupError:
            row = con.execute("SELECT text FROM models.fit_stats WHERE model = ? AND stat = 'not_fitted'",
                              [v.fit_key]).fetchall()
            if not row:
                raise dg.Failure(description=(
                    f"The variant '{v.name}' ({v.file}) has no fit in the warehouse: it was added after "
                    f"the definitions loaded. Reload them (restart `offshoring ui`) or run "
                    f"`offshoring run` again.")) from None
            notes.append(f"Variant '{v.name}' ({v.description}) not fitted: {row[0][0]}.")
            continue
        refuse_stale_fit(fit, v.fit_key, v.fit_spec(study.spec.districts), f"{table}_robustness",
                         spec_sha256=study.spec.sha256, asset=v.main_fit or v.asset_name)
        refuse_fit_of_other_data(con, fit, v.fit_key, f"{table}_robustness", asset=v.main_fit or v.asset_name,
                                 hashes=hashes)
        if baseline_fit is not None and v is not base and same_estimates(fit, baseline_fit):
            notes.append(f"{v.name}: the same estimates as the baseline on these data (its change leaves "
                         f"the sample and the model as they are: {v.description})")
            continue
        description = v.description + _sample_years_note(v, fit, base)
        if base is not None and v is not base:
            differs = spec_differences(base.model_spec, v.model_spec)
            if differs:
                description += f" Its specification differs from the baseline's in: {'; '.join(differs)}."
        if fit.stats.get("dropped_dummies"):
            description += f" Dropped as Stata does: {fit.stats['dropped_dummies']}."
        cols.append(robustness.VariantColumn(name=v.name, description=description, fit=fit,
                                             estimator=v.estimator,
                                             settings=fit_settings(fit, v.model_spec, v.estimator)))
    return cols, notes


def _dummies_and_labels(variants: tuple[Variant, ...]) -> tuple[list[tables.DummyGroup], dict[str, str]]:
    """The dummy sets and row labels of every variant's specification (a variant's region
    dummies are a "Territorial dummies (regions)" line, not rows of coefficients)."""
    groups: list[tables.DummyGroup] = []
    labels: dict[str, str] = {}
    for v in variants:
        sp = v.model_spec
        for src, (_base, levels) in sp.dummies.items():
            groups.append(tables.DummyGroup(tables.dummy_label(src), tuple(levels.values())))
        if getattr(sp, "year_dummies", False):
            groups.append(tables.DummyGroup(tables.YEAR_DUMMIES, prefix="year_"))
        shown = tables.probit_labels(sp) if v.table == "table2" else (getattr(sp, "labels", None) or {})
        for term, label in shown.items():
            labels.setdefault(str(term), str(label))
    return groups, labels


def _base_spec(con, study: Study, table: str, baseline_fit) -> tables.ModelTableSpec:
    if table == "table2":
        return tables.table2_spec(study.spec.probit, tables.probit_period(con, study.spec.probit, baseline_fit),
                                  fit=baseline_fit)
    return tables.table3_spec(study.spec.cox, tables.cox_period(con, study.spec.cox, baseline_fit), baseline_fit)


def _initial_outcome_row(spec, cols: list[robustness.VariantColumn], variants: tuple[Variant, ...],
                        study: Study):
    """Table 2's initial-outcome row labelled with every column's initial year when they differ
    (a variant estimated from 2007 starts its firms in 2006): one label naming the baseline's
    year would misname the others'."""
    by_name = {v.name: v for v in variants}
    years = []
    for c in cols:
        v = by_name.get(c.name)
        has = c.fit is not None and "y_initial" in {str(t) for t in c.fit.params.index}
        years.append(tables.initial_year_of(v.model_spec if v is not None else study.spec.probit, c.fit)
                     if has else None)
    template = str((study.spec.probit.labels or {}).get("y_initial", "y_initial"))
    label = robustness.initial_outcome_label(template, years)
    if label is None:
        return spec
    return dataclasses.replace(spec, rows=tuple((t, label if t == "y_initial" else lab) for t, lab in spec.rows))


def _table_asset(table: str, variants: tuple[Variant, ...], order: int) -> dg.AssetsDefinition:
    name = f"{table}_robustness"
    curve = f"{table}_specification_curve"
    deps = sorted({v.main_fit or v.asset_name for v in variants}
                  | {TABLES[table]["main_fits"][TABLES[table]["estimators"][0]]})

    @dg.asset(name=name, group_name=GROUP, kinds={"duckdb", "markdown", "matplotlib"}, deps=deps,
              check_specs=[_disclosure_check(name)], pool=WRITER_POOL, output_required=False,
              description=f"{'Table 2' if table == 'table2' else 'Table 3'} across its specification "
                          f"variants, one column each ((1) the baseline), with a specification-curve "
                          f"figure ({curve}).")
    def _robustness(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders, study: Study):
        rules, source = _rules(study), _source(folders)
        digits = study.spec.reports.format.digits
        current = tuple(study.spec.variants.get(table, ()))
        gone = drop_fits_of_removed_variants(warehouse, table, current)
        if gone:
            context.log.info(f"Fits of variants no longer in the specification deleted from models.*: "
                             f"{', '.join(gone)}")
        with warehouse.connect(read_only=True) as con:
            main = TABLES[table]["main_fits"][TABLES[table]["estimators"][0]]
            baseline = read_fit(con, main)
            base_variant = _baseline(study, table)
            if base_variant is not None:
                refuse_stale_fit(baseline, main, base_variant.fit_spec(study.spec.districts), name,
                                 spec_sha256=study.spec.sha256)
            hashes: dict[str, str | None] = {}  # the input tables' hashes, computed once for every column
            refuse_fit_of_other_data(con, baseline, main, name, hashes=hashes)
            spec = _base_spec(con, study, table, baseline)
            cols, notes = _columns(con, current, study, table, hashes, baseline)

        groups, labels = _dummies_and_labels(current)
        if table == "table2":  # columns whose samples start in another year: the row says so
            spec = _initial_outcome_row(spec, cols, current, study)
        gammas = frozenset(str(t) for c in cols if c.fit is not None for t in c.fit.params.index
                           if str(t).startswith("gamma_"))
        if gammas:  # the grouped-time fit's intercepts per spell-year: its baseline hazard
            spec = dataclasses.replace(spec, hidden=spec.hidden | gammas, notes=spec.notes + (
                "Grouped-time columns: one intercept per spell-year (the baseline hazard), not shown.",))

        def build():
            t = robustness.robustness_table(name, spec, cols, digits=digits, rules=rules, source=source,
                                            dummy_groups=groups, labels=labels)
            t.notes.extend(notes)
            f = robustness.specification_curve(curve, spec, cols, rules=rules, source=source)
            return t, f

        built, found = _build(build)
        if not found:
            found = _violations(built)
        if found:
            yield _failed(found)
            return
        main, fig = built
        prov = _provenance(context, folders, study, source, warehouse)
        record = render.write_table(main, folders.reports, prov, order=order)
        figures.write_figure(fig, folders.reports, prov, order=order + 1)
        yield dg.MaterializeResult(metadata=_metadata(
            record, folders.reports, table=_markdown(main),
            variants=frame_table_of(cols), figure_data=_markdown(fig.data),
            png=dg.MetadataValue.path(str(folders.reports / f"{curve}.png")),
            **({"deleted_fits_of_removed_variants": ", ".join(gone)} if gone else {})))
        yield _model_passed([(c.name, c.fit) for c in cols if c.fit is not None], rules,
                            [getattr(fig.protected, "summary", lambda: None)()])

    return _robustness


def frame_table_of(cols: list[robustness.VariantColumn]) -> dg.MetadataValue:
    import pandas as pd

    return frame_table(pd.DataFrame([{"column": f"({i})", "variant": c.name, "description": c.description,
                                      "nobs": getattr(c.fit, "nobs", None)} for i, c in enumerate(cols, 1)]))


def build_assets(variants: dict[str, tuple[Variant, ...]]) -> list[dg.AssetsDefinition]:
    """The variant fits and the two robustness tables, from the specification's variants."""
    out = []
    for table, order in (("table2", 60), ("table3", 70)):
        vs = tuple(variants.get(table, ()))
        out += [_variant_asset(v) for v in vs if v.main_fit is None]
        out.append(_table_asset(table, vs, order))
    return out
