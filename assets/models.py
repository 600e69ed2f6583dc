"""Model fits: the dynamic random-effects probit of Table 2 and the Cox model of Table 3.

Each takes its spec from the study specification (`Study`), fits over all loaded years, and writes
coefficients, standard errors, fit statistics and sample sizes to DuckDB
(``models.*``); the Markdown table is shown in the UI. On synthetic data from our
own generator the true value and the 95% interval's coverage sit beside each estimate.
"""

import dataclasses
import json
import numbers
import time
from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from assets._common import frame_table

from offshoring.econometrics.cox import fit_cox_table3
from offshoring.econometrics.dynamic import build_dynamic_sample
from offshoring.econometrics.grouped_ph import fit_grouped_ph_table3, region_spell_risk_rows
from offshoring.fitstore import restamp, write_fit
from offshoring.truth import read_truth
from offshoring.reports.tables import probit_labels
from offshoring.variants import changed_parts, fit_spec, fit_spec_record, inputs_fingerprint, stored_fingerprint
from assets._common import with_origin
from assets.resources import WRITER_POOL, Folders, Study, Warehouse

GROUP = "models"


def _coef_markdown(coef: pd.DataFrame, label: str = "estimate", labels: dict | None = None) -> str:
    """The fit as the model page shows it: the specification's label of each term (the
    report tables' wording), then the term's name in the warehouse."""
    labels = dict(labels or {})
    has_truth = coef["true_value"].notna().any()
    head = (f"| row | term | {label} | std. error | p-value |"
            + (" true value | 95% CI covers |" if has_truth else ""))
    sep = "|---|---|---:|---:|---:|" + ("---:|:---:|" if has_truth else "")
    rows = []
    for r in coef.itertuples():
        line = (f"| {labels.get(r.term, '')} | `{r.term}` | {r.estimate:.4f} | {r.std_error:.4f} | "
                f"{r.p_value:.3f} |")
        if has_truth:
            tv = "" if pd.isna(r.true_value) else f"{r.true_value:.4f}"
            cov = "" if r.covered is None or pd.isna(r.covered) else ("yes" if r.covered else "no")
            line += f" {tv} | {cov} |"
        rows.append(line)
    return "\n".join([head, sep, *rows])


def _frame_table(con, name: str, df: pd.DataFrame) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS models")
    con.register("_frame", df)
    con.execute(f"CREATE OR REPLACE TABLE models.{name} AS SELECT * FROM _frame")
    con.unregister("_frame")


def _truth(context, folders: Folders, section: str, key: str) -> dict:
    # true values belong to the synthetic demo only: real files are never compared with a truth.json
    if not folders.synthetic:
        return {}
    truth, warning = read_truth(folders.raw)
    if warning:
        context.log.warning(warning)
    if not truth:
        return {}
    part = truth.get(section) or {}
    out = dict(part.get(key) or {})
    if section == "probit" and "lnsig2u" in part:
        out["lnsig2u"] = part["lnsig2u"]
    return out


def require_spec_columns(con, spec, table: str, file: str) -> None:
    """Refuse a specification naming a column `table` lacks, naming file, key and column."""
    from offshoring.econometrics.model_specs import missing_column_sentence

    columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    problem = missing_column_sentence(columns, spec, table, file)
    if problem:
        raise dg.Failure(description=problem)


def _spec_json(*parts) -> str:
    return json.dumps([dataclasses.asdict(p) if dataclasses.is_dataclass(p) else
                       (p.model_dump(mode="json") if hasattr(p, "model_dump") else p) for p in parts],
                      sort_keys=True, default=str)


def fit_fingerprint(con, spec_json: str, table: str, folders: Folders, truth: dict) -> str:
    """What a fit is made from (code, the specification it uses, its input table's content,
    the data's origin and true values): equal to the stored one = nothing to refit."""
    return inputs_fingerprint(con, spec_json, [table], origin=folders.origin, truth=truth)


def main_fit_spec(study: Study, estimator: str) -> dict:
    """What the pipeline's own fit `estimator` (``probit``, ``cox``, ``grouped_ph``) depends on
    under the study specification (`offshoring.variants.fit_spec`): recorded with the fit,
    compared by the reports before they show it."""
    sp = study.spec
    return fit_spec(sp.probit if estimator == "probit" else sp.cox, estimator=estimator,
                    thresholds=sp.thresholds, panel=sp.panel, districts=sp.districts)


def settings_of(res, spec, keys) -> dict:
    """The estimation settings a fit was made with (read from the results where they say, else
    the specification's): recorded in models.fit_stats, printed in the tables' notes."""
    out = {}
    for k in keys:
        v = getattr(res, k, None)
        if v is None:
            v = getattr(spec, k, None)
        if isinstance(v, bool):
            out[k] = int(v)
        elif isinstance(v, numbers.Integral):
            out[k] = int(v)
        elif isinstance(v, (numbers.Real, str)):
            out[k] = v
        elif v is not None:
            out[k] = str(v)
    return out


def fit_stamp(fp) -> dict:
    """Stored with a fit: its fingerprint (and its parts' hashes, so a refit can say why) and
    when it was made."""
    return {"input_fingerprint": str(fp), "input_fingerprint_parts": json.dumps(getattr(fp, "parts", {})),
            "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def log_refit(context, con, model: str, fp) -> None:
    """Say why a model is fitted again (which parts of its fingerprint changed)."""
    if stored_fingerprint(con, model) is None:
        context.log.info(f"{model}: no earlier fit; fitting")
        return
    context.log.info(f"{model}: fitting again; changed since the last fit: "
                     f"{', '.join(changed_parts(con, model, fp)) or 'its fingerprint'}")


def unchanged_fit(context, con, model: str, fp: str, label: str, labels: dict,
                  record: dict | None = None) -> dg.MaterializeResult | None:
    """The stored fit when it was made from exactly these inputs (no refit), else None. A fit
    reused is recorded as valid under the current settings (`record`: `fit_spec_record`), since
    its inputs (the panel's content) and its model settings are the same: a threshold that
    changed nothing in the panel must not leave the reports refusing a fit no run would redo."""
    if stored_fingerprint(con, model) != fp:
        log_refit(context, con, model, fp)
        return None
    coef = con.execute("SELECT term, estimate, std_error, p_value, true_value, covered FROM "
                       "models.coefficients WHERE model = ? ORDER BY position", [model]).fetchdf()
    if coef.empty:
        return None
    restamp(con, model, record or {})
    stats = dict(con.execute("SELECT stat, coalesce(text, CAST(value AS VARCHAR)) FROM models.fit_stats "
                             "WHERE model = ?", [model]).fetchall())
    context.log.info(f"{model}: code, specification and inputs unchanged since its fit of "
                     f"{stats.get('fitted_at')}; not refitted")
    return dg.MaterializeResult(metadata={
        "refit": False, "fitted_at": str(stats.get("fitted_at")), "input_fingerprint": str(fp),
        "coefficients": dg.MetadataValue.md(_coef_markdown(coef, label, labels)),
        "nobs": int(float(stats["nobs"])),
    })


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "python"}, pool=WRITER_POOL,
    deps=["model_panel"],
    description="Dynamic random-effects probit of offshore outsourcing (Table 2), Wooldridge "
                "initial conditions; link, quadrature and standard errors as the probit "
                "specification sets them (the fit's statistics record them).",
)
def outsourcing_probit(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders,
                       study: Study):
    cfg, spec = study.spec.models.probit, study.spec.probit
    spec_path, spec_sha = study.spec.files["probit"], study.spec.sha256
    truth = _truth(context, folders, "probit", "params")
    with warehouse.connect() as con:
        fp = fit_fingerprint(con, _spec_json(spec, cfg), "panel.model_panel", folders, truth)
        same = unchanged_fit(context, con, "outsourcing_probit", fp, "estimate", probit_labels(spec),
                             fit_spec_record(main_fit_spec(study, "probit")))
        if same is not None:
            return with_origin(same, folders)
        require_spec_columns(con, spec, "panel.model_panel", str(spec_path))
        # only the columns the spec uses (a quarter of the panel's width)
        cols = sorted({spec.group, spec.time, spec.outcome, *spec.lagged, *spec.contemporaneous,
                       *spec.counts, *spec.dummies})
        panel = con.sql(f"SELECT {', '.join(cols)} FROM panel.model_panel").pl()
        t0 = time.perf_counter()
        sample = build_dynamic_sample(panel, spec)
        del panel
        res = sample.fit()
        fit_s = time.perf_counter() - t0
        context.log.info(f"probit fitted in {fit_s:.1f} s on {res.nobs} observations, {res.ngroups} firms")
        lr = res.lr_test_rho
        years = sample.description["estimation_years"]
        stats = {"llf": res.llf, "sigma_u": res.sigma_u, "rho": res.rho, "fit_seconds": fit_s,
                 "lr_rho_chibar2": lr.get("chibar2"), "lr_rho_pvalue": lr.get("pvalue"),
                 "spec": str(spec_path), "spec_sha256": spec_sha,
                 # the period the tables print is the estimation sample's, stored with the fit
                 "sample_first_year": min(years), "sample_last_year": max(years),
                 **_initial_year(sample), **settings_of(res, spec, ("link", "cov_type", "quad_points", "adaptive")),
                 **fit_spec_record(main_fit_spec(study, "probit")), **fit_stamp(fp)}
        coef = write_fit(con, "outsourcing_probit", res.params, res.bse, res.pvalues,
                         nobs=res.nobs, ngroups=res.ngroups, stats=stats, truth=truth)
        extra = {}
        points = cfg.quadrature_check
        if points:
            quad = res.quadrature_check(tuple(points)).reset_index()
            _frame_table(con, "probit_quadrature_check", quad)
            extra["quadrature_check"] = frame_table(quad)
        terms = [t for t in cfg.partial_effects if t in res.params.index]
        if terms:
            ape = res.average_partial_effects(terms).reset_index()
            _frame_table(con, "probit_partial_effects", ape)
            extra["partial_effects"] = frame_table(ape)
    return with_origin(dg.MaterializeResult(metadata={
        "refit": True, "input_fingerprint": str(fp),
        "coefficients": dg.MetadataValue.md(_coef_markdown(coef, labels=probit_labels(spec, stats))),
        "nobs": res.nobs, "ngroups": res.ngroups, "llf": float(res.llf),
        "sigma_u": float(res.sigma_u), "rho": float(res.rho), "fit_seconds": round(fit_s, 2),
        "spec_file": str(spec_path), "spec_sha256": spec_sha,
        "sample": dg.MetadataValue.json(_jsonable(getattr(res, "sample", None))),
        **extra,
    }), folders)


def _initial_year(sample) -> dict:
    """The earliest initial period of the sample's firms (the year of the initial outcome the
    table labels), from the sample's description."""
    years = (getattr(sample, "description", None) or {}).get("initial_years") or {}
    return {"sample_initial_year": int(min(years))} if years else {}


def _jsonable(sample) -> dict:
    desc = getattr(sample, "description", None)
    if not isinstance(desc, dict):
        return {}
    import json

    return json.loads(json.dumps(desc, default=str))


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "python"}, pool=WRITER_POOL,
    deps=["spell_years"],
    description="Cox model of backshoring (Table 3) on region spells in (start, stop] form, "
                "Schoenfeld PH test; ties method and standard errors as the Cox specification "
                "sets them (the fit's statistics record them).",
)
def backshoring_cox(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders,
                    study: Study):
    spec_path, spec_sha = study.spec.files["cox"], study.spec.sha256
    truth = _truth(context, folders, "cox", "coefficients")
    with warehouse.connect() as con:
        fp = fit_fingerprint(con, _spec_json(study.spec.cox, "cox"), "panel.spell_years", folders, truth)
        same = unchanged_fit(context, con, "backshoring_cox", fp, "log hazard ratio", study.spec.cox.labels,
                             fit_spec_record(main_fit_spec(study, "cox")))
        if same is not None:
            return with_origin(same, folders)
        require_spec_columns(con, study.spec.cox, "panel.spell_years", str(study.spec.files["cox"]))
        spells = region_spell_risk_rows(con.sql("SELECT * FROM panel.spell_years").pl(),
                                        study.spec.cox.firm_exit)
        t0 = time.perf_counter()
        res = fit_cox_table3(spells, study.spec.cox)
        fit_s = time.perf_counter() - t0
        del spells
        # firms behind the clustered errors; None (stored as NULL) for an unclustered fit
        ngroups = res.ngroups
        years = res.sample.data["year"]
        stats = {"llf": res.llf, "n_events": res.n_events, "fit_seconds": fit_s,
                 "spec": str(spec_path), "spec_sha256": spec_sha,
                 "sample_first_year": int(years.min()), "sample_last_year": int(years.max()),
                 **settings_of(res, study.spec.cox, ("cov_type", "ties", "cluster_correction")),
                 **fit_spec_record(main_fit_spec(study, "cox")), **fit_stamp(fp)}
        coef = write_fit(con, "backshoring_cox", res.params, res.bse, res.pvalues,
                         nobs=res.nobs, ngroups=ngroups, stats=stats, truth=truth)
        ph = res.ph_test().reset_index()
        _frame_table(con, "cox_ph_test", ph)
    return with_origin(dg.MaterializeResult(metadata={
        "refit": True, "input_fingerprint": str(fp),
        "coefficients": dg.MetadataValue.md(_coef_markdown(coef, "log hazard ratio", study.spec.cox.labels)),
        "nobs": int(res.nobs), "n_events": int(res.n_events),
        **({"ngroups": int(ngroups)} if ngroups is not None else {}),
        "fit_seconds": round(fit_s, 2), "spec_file": str(spec_path), "spec_sha256": spec_sha,
        "ph_test": frame_table(ph),
    }), folders)


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "python"}, pool=WRITER_POOL,
    deps=["spell_years"],
    description="Grouped-time proportional hazard of backshoring (complementary log-log on the "
                "spell-years, Prentice-Gloeckler), the companion of Table 3: exact for annual "
                "data, so it shows how much the Cox model's approximation for tied ends matters.",
)
def backshoring_grouped_ph(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders,
                           study: Study):
    spec_sha = study.spec.sha256
    truth = _truth(context, folders, "cox", "coefficients")
    with warehouse.connect() as con:
        fp = fit_fingerprint(con, _spec_json(study.spec.cox, "grouped_ph"), "panel.spell_years", folders, truth)
        same = unchanged_fit(context, con, "backshoring_grouped_ph", fp, "log hazard ratio",
                             study.spec.cox.labels, fit_spec_record(main_fit_spec(study, "grouped_ph")))
        if same is not None:
            return with_origin(same, folders)
        require_spec_columns(con, study.spec.cox, "panel.spell_years", str(study.spec.files["cox"]))
        spells = region_spell_risk_rows(con.sql("SELECT * FROM panel.spell_years").pl(),
                                        study.spec.cox.firm_exit)
        t0 = time.perf_counter()
        res = fit_grouped_ph_table3(spells, study.spec.cox)
        fit_s = time.perf_counter() - t0
        years = res.sample.data["year"]
        stats = {"llf": res.llf, "fit_seconds": fit_s, "spec": str(study.spec.files["cox"]),
                 "spec_sha256": spec_sha, "sample_first_year": int(years.min()),
                 "sample_last_year": int(years.max()),
                 **settings_of(res, study.spec.cox, ("cov_type", "cluster_correction")),
                 **fit_spec_record(main_fit_spec(study, "grouped_ph")), **fit_stamp(fp)}
        coef = write_fit(con, "backshoring_grouped_ph", res.params, res.bse, res.pvalues,
                         nobs=res.nobs, ngroups=res.ngroups, stats=stats, truth=truth)
    return with_origin(dg.MaterializeResult(metadata={
        "refit": True, "input_fingerprint": str(fp),
        "coefficients": dg.MetadataValue.md(_coef_markdown(coef, "log hazard ratio", study.spec.cox.labels)),
        "nobs": int(res.nobs), **({"ngroups": int(res.ngroups)} if res.ngroups is not None else {}),
        "fit_seconds": round(fit_s, 2), "spec_sha256": spec_sha,
    }), folders)
