"""The robustness table and the specification curve of Tables 2 and 3 (offshoring.reports.robustness).

Fits are written to a temporary DuckDB with `offshoring.fitstore.write_fit` and read back with
`read_fit`, as the report assets will; the layouts are the study specification's
(`tables.table2_spec`, `tables.table3_spec`).
"""

from __future__ import annotations

import csv
import io
import math

import duckdb
import pandas as pd
import pytest

from offshoring.fitstore import read_fit, write_fit
from offshoring.reports import figures, render, sdc, tables
from offshoring.reports import robustness as rb
from offshoring.reports.render import NO_DATA
from offshoring.reports.source import DataSource
from offshoring.spec import load_study_spec

SPEC = load_study_spec()
RULES = sdc.Rules.from_spec(SPEC.reports.sdc)
DIGITS = SPEC.reports.format.digits
SYN = DataSource.of(True, 11)
REAL = DataSource.of(False)
BASE2 = tables.table2_spec(SPEC.probit, (2006, 2012))
BASE3 = tables.table3_spec(SPEC.cox, (2005, 2012))
ROWS2 = [k for k, _ in BASE2.rows]
ROWS3 = [k for k, _ in BASE3.rows]


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "fits.duckdb"))
    yield c
    c.close()


def stored(con, model: str, params: dict, *, se: float | dict = 0.05, pvalues: dict | None = None,
           nobs: int = 4000, ngroups: int | None = 600, llf: float = -1500.25):
    """Write a fit with write_fit and read it back (a StoredFit)."""
    p = pd.Series(params, dtype=float)
    b = pd.Series({k: (se.get(k, 0.05) if isinstance(se, dict) else se) for k in p.index})
    pv = (p / b).abs().map(lambda z: math.erfc(z / math.sqrt(2)))
    for k, v in (pvalues or {}).items():
        pv[k] = v
    write_fit(con, model, p, b, pv, nobs=nobs, ngroups=ngroups, stats={"llf": llf})
    return read_fit(con, model)


def probit_params(**override) -> dict:
    """Every term a fit of the Table 2 probit has: rows, dummies, Mundlak terms, sigma."""
    out = {t: 0.01 * (i % 9 - 4) + 0.003 * i for i, t in enumerate(SPEC.probit.exog_names)}
    out["lnsig2u"] = 0.4
    out.update(override)
    return out


def cox_params(**override) -> dict:
    out = {c: 0.05 * (i - 4) for i, c in enumerate(SPEC.cox.covariates)}
    out.update({"footwear": 0.1, "area_centre": -0.2})
    out.update(override)
    return out


def cells_of(table: render.DisplayTable, label: str) -> list[str]:
    return table.row(label).cells


def se_cells_of(table: render.DisplayTable, label: str) -> list[str]:
    i = [r.label for r in table.rows].index(label)
    assert table.rows[i + 1].label == ""
    return table.rows[i + 1].cells


@pytest.fixture
def probit_columns(con):
    baseline = stored(con, "probit_baseline", probit_params())
    # no district term; region dummies instead of macro-areas; one term of its own; a year dummy
    variant = probit_params(size_lag=0.25, region_lombardia=0.3, region_veneto=-0.1, year_2009=0.05)
    for t in ("district", "area_north_east", "area_centre", "area_south", "area_islands"):
        variant.pop(t)
    regions = stored(con, "probit_regions", variant, se=0.2, ngroups=550, nobs=3700, llf=-1400.5)
    return [
        rb.VariantColumn("baseline", "The specification of Table 2.", baseline),
        rb.VariantColumn("regions", "Region dummies instead of macro-areas, no district term.", regions),
        rb.VariantColumn("istat_districts", "ISTAT district membership.", None,
                         reason="no district list at reference/istat_districts.csv"),
    ]


# --------------------------------------------------------------------------- table


def test_baseline_column_is_the_standalone_table2(probit_columns):
    t = rb.robustness_table("table2_robustness", BASE2, probit_columns, digits=DIGITS, rules=RULES,
                            source=SYN)
    alone = tables.model_table(probit_columns[0].fit, BASE2, digits=DIGITS, rules=RULES, source=SYN)
    for key, label in BASE2.rows:
        est, se = alone.row(label).cells
        assert cells_of(t, label)[0] == est
        assert se_cells_of(t, label)[0] == f"({se})"
    for label in ("Observations", "Groups", *[g.label for g in BASE2.dummies]):
        assert cells_of(t, label)[0] == alone.row(label).cells[0]
    assert cells_of(t, "Log likelihood")[0] == render.fmt_number(-1500.25, DIGITS)
    assert t.header == [[("(1)", 1), ("(2)", 1), ("(3)", 1)],
                        [("baseline", 1), ("regions", 1), ("istat_districts", 1)]]
    assert any("Column (1) is the baseline" in n for n in t.notes)


def test_missing_term_extra_term_and_dummy_lines(probit_columns):
    t = rb.robustness_table("table2_robustness", BASE2, probit_columns, digits=DIGITS, rules=RULES,
                            source=SYN)
    district = dict(BASE2.rows)["district"]
    assert cells_of(t, district)[1] == NO_DATA
    assert cells_of(t, district)[0] != NO_DATA
    # a term only the variant has is a row of its own, after the baseline's rows
    labels = [r.label for r in t.rows]
    assert "size_lag" in labels
    assert labels.index("size_lag") > labels.index(BASE2.rows[-1][1])
    assert cells_of(t, "size_lag")[:2] == [NO_DATA, "0.250"]
    assert se_cells_of(t, "size_lag")[1] == "(0.200)"
    # what a model table never shows, and dummies, are not rows
    for hidden in ("const", "lnsig2u", "mean_export_ratio_lag", "init_supplier", "region_lombardia",
                   "year_2009", "footwear", "area_centre"):
        assert hidden not in labels
    assert cells_of(t, "Territorial dummies (regions)")[:2] == ["No", "Yes"]
    assert cells_of(t, "Territorial dummies (macro-areas)")[:2] == ["Yes", "No"]
    assert cells_of(t, "Year dummies")[:2] == ["No", "Yes"]
    assert cells_of(t, "Observations")[:2] == ["4,000", "3,700"]
    assert any("ln sigma_u^2" in n and "the constant" in n for n in t.notes)


def test_explicit_dummy_groups_make_a_line(con):
    base = stored(con, "b", probit_params())
    v = stored(con, "v", probit_params(lomb=0.1, ven=0.2))
    cols = [rb.VariantColumn("baseline", "Table 2.", base), rb.VariantColumn("regions", "Regions.", v)]
    plain = rb.robustness_table("t", BASE2, cols, digits=3, rules=RULES, source=SYN)
    assert "lomb" in [r.label for r in plain.rows]  # unknown names: shown, not dropped
    group = tables.DummyGroup(tables.dummy_label("region"), columns=("lomb", "ven"))
    t = rb.robustness_table("t", BASE2, cols, digits=3, rules=RULES, source=SYN, dummy_groups=[group])
    assert "lomb" not in [r.label for r in t.rows]
    assert cells_of(t, "Territorial dummies (regions)") == ["No", "Yes"]


def test_stars_follow_pvalues(con):
    keys = ROWS2[:4]
    fit = stored(con, "p", probit_params(), pvalues=dict(zip(keys, (0.004, 0.03, 0.07, 0.2))))
    t = rb.robustness_table("t", BASE2, [rb.VariantColumn("baseline", "Table 2.", fit)],
                            digits=3, rules=RULES, source=SYN)
    labels = dict(BASE2.rows)
    got = [cells_of(t, labels[k])[0] for k in keys]
    values = [render.fmt_number(fit.params[k], 3) for k in keys]
    assert got == [values[0] + "***", values[1] + "**", values[2] + "*", values[3]]


def test_table3_shows_hazard_ratios(con):
    b = cox_params()
    base = stored(con, "cox", b, se=0.1, ngroups=None, nobs=900)
    alt = stored(con, "cox_alt", cox_params(roi=0.3), se=0.2, ngroups=None, nobs=800)
    cols = [rb.VariantColumn("baseline", "Table 3.", base), rb.VariantColumn("efron", "Efron ties.", alt)]
    t = rb.robustness_table("table3_robustness", BASE3, cols, digits=3, rules=RULES, source=SYN)
    alone = tables.model_table(base, BASE3, digits=3, rules=RULES, source=SYN)
    for key, label in BASE3.rows:
        assert cells_of(t, label)[0] == alone.row(label).cells[0]
        assert se_cells_of(t, label)[0] == f"({alone.row(label).cells[1]})"
    roi = dict(BASE3.rows)["roi"]
    assert cells_of(t, roi)[1].rstrip("*") == render.fmt_number(math.exp(0.3), 3)
    assert se_cells_of(t, roi)[1] == f"({render.fmt_number(math.exp(0.3) * 0.2, 3)})"
    assert cells_of(t, "Groups") == [NO_DATA, NO_DATA]
    assert any("Hazard ratios" in n for n in t.notes)


def test_not_fitted_variant_shows_its_reason(probit_columns):
    t = rb.robustness_table("t", BASE2, probit_columns, digits=3, rules=RULES, source=SYN)
    assert all(r.cells[2] in (NO_DATA, "") for r in t.rows)
    assert all(r.cells[2] == NO_DATA for r in t.rows if r.label)
    note = next(n for n in t.notes if n.startswith("(3) istat_districts"))
    assert "ISTAT district membership" in note
    assert "Not fitted: no district list at reference/istat_districts.csv" in note
    assert any(n.startswith("(2) regions: Region dummies") for n in t.notes)


def test_a_variant_on_too_few_firms_refuses(con, probit_columns):
    tiny = stored(con, "tiny", probit_params(), ngroups=RULES.min_firms - 1)
    cols = probit_columns + [rb.VariantColumn("tiny", "Two firms.", tiny)]
    with pytest.raises(sdc.DisclosureError):
        rb.robustness_table("t", BASE2, cols, digits=3, rules=RULES, source=SYN)
    with pytest.raises(sdc.DisclosureError):
        rb.specification_curve("c", BASE2, cols, rules=RULES, source=SYN)
    # at the threshold it is published, and the exemption names the smallest model
    ok = stored(con, "ok", probit_params(), ngroups=RULES.min_firms)
    t = rb.robustness_table("t", BASE2, probit_columns + [rb.VariantColumn("ok", "Few.", ok)],
                            digits=3, rules=RULES, source=SYN)
    assert t.sdc_exempt.startswith(f"model estimates on {RULES.min_firms} firms")
    assert render.disclosure_violations(t) == []


def test_source_line_says_synthetic_or_real(probit_columns):
    syn = rb.robustness_table("t", BASE2, probit_columns, digits=3, rules=RULES, source=SYN)
    real = rb.robustness_table("t", BASE2, probit_columns, digits=3, rules=RULES, source=REAL)
    assert syn.source == SYN.line() and "synthetic" in syn.source and "seed 11" in syn.source
    assert "synthetic" not in real.source
    assert f"Source: {SYN.line()}" in render.to_markdown(syn)
    with pytest.raises(TypeError):
        rb.robustness_table("t", BASE2, probit_columns, digits=3, rules=RULES, source=None)


def test_renders_in_every_format(probit_columns, tmp_path):
    t = rb.robustness_table("table2_robustness", BASE2, probit_columns, digits=3, rules=RULES,
                            source=SYN)
    md, tex, text = render.to_markdown(t), render.to_latex(t), render.to_csv(t)
    names = ["(1): baseline", "(2): regions", "(3): istat_districts"]
    assert t.column_names() == names
    for name in names:
        assert name in md
    for h in ("(1)", "(2)", "(3)", "baseline", "regions", "istat\\_districts"):
        assert h in tex
    header = next(csv.reader(io.StringIO(text)))
    assert header == ["row", *names, "data_source"]
    record = render.write_table(t, tmp_path)
    assert all((tmp_path / f).exists() for f in record.files)


# --------------------------------------------------------------------------- curve


def test_curve_data_sorted_with_the_baseline_marked(con):
    key = ROWS2[2]
    fits = {"baseline": 0.30, "logit": 0.55, "no_initial": 0.10, "balanced": 0.42}
    cols = [rb.VariantColumn(n, f"{n}.", stored(con, n, probit_params(**{key: v})))
            for n, v in fits.items()]
    cols.append(rb.VariantColumn("missing", "Not run.", None, reason="no data"))
    df = rb.specification_curve_data(BASE2, cols)
    assert list(df.columns) == list(rb.CURVE_COLUMNS)
    assert list(dict.fromkeys(df["term"])) == ROWS2  # default: every row term of the baseline
    for _, sub in df.groupby("term", sort=False):
        assert list(sub["estimate"]) == sorted(sub["estimate"])
        assert sub["is_baseline"].sum() == 1
        assert sub.loc[sub["is_baseline"], "variant"].item() == "baseline"
        assert "missing" not in set(sub["variant"])
    sub = df[df["term"] == key]
    assert list(sub["variant"]) == ["no_initial", "baseline", "balanced", "logit"]
    row = sub[sub["variant"] == "logit"].iloc[0]
    assert row["low"] == pytest.approx(0.55 - 1.96 * 0.05)
    assert row["high"] == pytest.approx(0.55 + 1.96 * 0.05)
    assert row["n_firms"] == 600


def test_curve_hazard_ratio_intervals(con):
    base = stored(con, "cox", cox_params(roi=0.2), se=0.1, ngroups=None, nobs=900)
    cols = [rb.VariantColumn("baseline", "Table 3.", base)]
    df = rb.specification_curve_data(BASE3, cols, terms=["roi"])
    r = df.iloc[0]
    assert r["estimate"] == pytest.approx(math.exp(0.2))
    assert (r["low"], r["high"]) == (pytest.approx(math.exp(0.2 - 0.196)),
                                      pytest.approx(math.exp(0.2 + 0.196)))
    assert r["n_firms"] == 900  # no groups: the observations


def test_curve_figure_is_written_like_the_others(con, probit_columns, tmp_path):
    terms = ROWS2[:2]
    out = rb.specification_curve("table2_curve", BASE2, probit_columns, terms=terms, rules=RULES,
                                 source=SYN)
    assert isinstance(out, figures.FigureOutput)
    assert out.caption.endswith(SYN.caption_suffix()) and "synthetic" in out.caption
    assert "istat_districts" in out.caption  # the variant not drawn, and why
    assert out.data.source == SYN.line()
    assert len(out.figure.axes) == len(terms)
    gids = {a.get_gid() for ax in out.figure.axes for a in ax.get_lines()}
    assert {f"point-{t}-{v}" for t in terms for v in ("baseline", "regions")} <= gids
    legend = [t.get_text() for leg in out.figure.legends for t in leg.get_texts()]
    assert any("baseline" in s for s in legend)
    record = figures.write_figure(out, tmp_path)
    assert record.files == ["table2_curve.png", "table2_curve.svg", "table2_curve_data.csv"]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "table2_curve_data.csv").read_text())))
    assert list(rows[0]) == [*rb.CURVE_COLUMNS, "data_source"]
    assert {r["data_source"] for r in rows} == {SYN.line()}
    assert [(r["term"], r["variant"], r["is_baseline"]) for r in rows] == [
        (terms[0], "baseline", "True"), (terms[0], "regions", "False"),
        (terms[1], "baseline", "True"), (terms[1], "regions", "False"),
    ]
    real = rb.specification_curve("c", BASE2, probit_columns, terms=terms[:1], rules=RULES, source=REAL)
    assert "synthetic" not in real.caption


# --------------------------------------------------------------------------- settings in the notes


def test_notes_name_each_columns_standard_errors_and_quadrature(con):
    fit = stored(con, "probit_baseline", probit_params())
    settings = {"cov_type": "cluster", "quad_points": 12, "adaptive": 1}
    cols = [
        rb.VariantColumn("baseline", "The baseline.", fit, estimator="probit", settings=settings),
        rb.VariantColumn("oim_errors", "OIM.", fit, estimator="probit", settings={**settings, "cov_type": "oim"}),
        rb.VariantColumn("quad_24", "24 points.", fit, estimator="probit", settings={**settings, "quad_points": 24}),
        rb.VariantColumn("logit", "Logit.", fit, estimator="probit", settings=settings),
    ]
    t = rb.robustness_table("table2_robustness", BASE2, cols, digits=DIGITS, rules=RULES, source=SYN)
    note = next(n for n in t.notes if n.startswith("Estimation"))
    assert "(1), (4): clustered by firm s.e.; 12-point adaptive (mean-variance) Gauss-Hermite" in note
    assert "(2): observed information (OIM) s.e.; 12-point" in note
    assert "(3): clustered by firm s.e.; 24-point adaptive" in note
    same = rb.robustness_table("table2_robustness", BASE2, [cols[0], cols[3]], digits=DIGITS, rules=RULES,
                               source=SYN)
    assert "Estimation, every column: clustered by firm s.e.; 12-point adaptive (mean-variance) " \
           "Gauss-Hermite quadrature." in same.notes
    cox = stored(con, "cox_baseline", cox_params())
    t3 = rb.robustness_table("table3_robustness", BASE3, [
        rb.VariantColumn("baseline", "Cox.", cox, estimator="cox", settings={"cov_type": "oim", "ties": "breslow"}),
        rb.VariantColumn("grouped_time", "cloglog.", cox, estimator="grouped_ph", settings={"cov_type": "cluster"}),
    ], digits=DIGITS, rules=RULES, source=SYN)
    note = next(n for n in t3.notes if n.startswith("Estimation"))
    assert "(1): observed information (OIM) s.e.; Breslow ties" in note
    assert "(2): clustered by firm s.e.; exact grouped-time likelihood" in note


# --------------------------------------------------------------------------- the robustness asset


def _robustness_setup(tmp_path, *, stale: str | None = None, from_panel: str | None = None):
    """A warehouse with the fits table2_robustness reads, made under the user's settings
    (the probit's baseline already with OIM errors and 24 points; other ceilings); `stale`:
    a fit made under the default settings instead; `from_panel`: that fit records the content
    of a small panel.model_panel as its input (as the model assets record it)."""
    import dagster as dg  # noqa: F401

    from assets.resources import Folders, Study, Warehouse
    from assets.robustness import _not_fitted
    from offshoring.variants import fit_spec_record

    user = tmp_path / "config"
    user.mkdir()
    (user / "probit_table2.yaml").write_text("cov_type: oim\nquad_points: 24\n")
    (user / "thresholds.yaml").write_text("turnover_ceiling:\n  default: 6000000\n  by_year: {2005: 4000000, "
                                          "2006: 4000000}\n")
    spec = load_study_spec(user)
    default = {v.name: v for v in SPEC.variants["table2"]}
    db = tmp_path / "w.duckdb"
    c = duckdb.connect(str(db))
    parts = {}
    if from_panel:
        import json

        from offshoring.variants import inputs_fingerprint

        c.execute("CREATE SCHEMA panel; CREATE TABLE panel.model_panel AS "
                  "SELECT 'f' || i AS firm_id, 2006 + i % 7 AS year FROM range(50) t(i)")
        parts = {"input_fingerprint_parts": json.dumps(inputs_fingerprint(c, "{}", ["panel.model_panel"]).parts)}
    for i, v in enumerate(spec.variants["table2"]):
        if v.name == "district_list":
            _not_fitted(c, v.fit_key, "no district list at reference/istat_districts.csv", "fp", {})
            continue
        made = default[v.name] if v.name == stale else v
        # each variant's own estimates (the same numbers as the baseline's would be a note)
        p = pd.Series(probit_params(), dtype=float) * (1 + 0.01 * i)
        b = pd.Series(0.05, index=p.index)
        write_fit(c, v.fit_key, p, b, (p / b).abs().map(lambda z: math.erfc(z / math.sqrt(2))), nobs=4000,
                  ngroups=600 if v.name != "logit" else 550,
                  stats={"llf": -1500.0, "sample_first_year": 2006, "sample_last_year": 2012,
                         "spec_sha256": "x", "cov_type": made.model_spec.cov_type,
                         "quad_points": made.model_spec.quad_points, "adaptive": 1,
                         **fit_spec_record(made.fit_spec(spec.districts)),
                         **(parts if v.name == from_panel else {})})
    c.close()
    (tmp_path / "raw").mkdir()
    resources = {"warehouse": Warehouse(database=str(db)),
                 "folders": Folders(raw_dir=str(tmp_path / "raw"), reports_dir=str(tmp_path / "reports"),
                                    synthetic=False),
                 "study": Study(config_dir=str(user))}
    return spec, resources


def _table2_robustness_asset(spec):
    from assets.robustness import build_assets

    return next(a for a in build_assets(spec.variants) if a.key.to_user_string() == "table2_robustness")


def test_a_variant_identical_to_the_baseline_is_a_note_not_a_column(tmp_path):
    import dagster as dg

    spec, resources = _robustness_setup(tmp_path)
    by = {v.name: v for v in spec.variants["table2"]}
    assert by["oim_errors"].same_fit_as(by["baseline"]) and by["quad_24"].same_fit_as(by["baseline"])
    result = dg.materialize([_table2_robustness_asset(spec)], resources=resources, raise_on_error=False)
    assert result.success
    md = (tmp_path / "reports" / "table2_robustness.md").read_text()
    header = md.splitlines()[2]
    assert "oim_errors" not in header and "quad_24" not in header and "logit" in header
    assert "oim_errors: identical to the baseline under the current settings" in md
    # every list a variant's overlay replaces, under the current baseline, beside its description
    assert "Its specification differs from the baseline's in: dummies without macro_area; with region." in md
    assert "quad_24: identical to the baseline under the current settings" in md
    # the baseline's footnote names its own settings, not the shipped default's
    assert "standard errors observed information (OIM); 24-point adaptive" in md
    assert "(baseline: 6 million EUR (4 million EUR in 2005-2006))" in md
    assert "Estimation, every column: observed information (OIM) s.e.; 24-point adaptive" in md
    # the check covers the table: every model it prints, and the curve's points
    check = next(e for e in result.get_asset_check_evaluations())
    meta = {k: v.value for k, v in check.metadata.items()}
    assert check.passed and meta["models_checked"] == 5  # baseline, ceiling, regions, logit, years
    assert meta["smallest_model_firms"] == 550 and meta["smallest_model"] == "logit"
    assert meta["min_firms"] == RULES.min_firms and meta["figure_cells"] > 0


def test_fits_of_variants_no_longer_in_the_specification_are_deleted(tmp_path):
    """A variant whose file was removed left its fit in models.coefficients and
    models.fit_stats, where someone querying the warehouse would take it for a current
    result; the robustness table's run deletes it and keeps every current variant's fit
    (the not-fitted row included) and the other table's variants."""
    import dagster as dg

    spec, resources = _robustness_setup(tmp_path)
    db = resources["warehouse"].database
    with duckdb.connect(db) as c:
        for model in ("table2_variant_removed_one", "table3_variant_removed_two"):
            p = pd.Series({"x": 0.1})
            write_fit(c, model, p, p, p, nobs=10, ngroups=5, stats={"llf": -1.0})
        before = {r[0] for r in c.execute("SELECT DISTINCT model FROM models.fit_stats").fetchall()}
    assert "table2_variant_removed_one" in before
    result = dg.materialize([_table2_robustness_asset(spec)], resources=resources, raise_on_error=False)
    assert result.success
    with duckdb.connect(db, read_only=True) as c:
        stats = {r[0] for r in c.execute("SELECT DISTINCT model FROM models.fit_stats").fetchall()}
        coefs = {r[0] for r in c.execute("SELECT DISTINCT model FROM models.coefficients").fetchall()}
    assert stats == before - {"table2_variant_removed_one"}
    assert "table2_variant_removed_one" not in coefs and "table3_variant_removed_two" in coefs
    assert {v.fit_key for v in spec.variants["table2"]} <= stats  # the not-fitted district_list too
    mat = result.asset_materializations_for_node("table2_robustness")[0]
    assert mat.metadata["deleted_fits_of_removed_variants"].value == "table2_variant_removed_one"


def _set_fit(db, model: str, *, like: str | None = None, stats: dict | None = None) -> None:
    """Give `model`'s stored fit the estimates of `like`'s, and/or set some statistics."""
    with duckdb.connect(db) as c:
        if like is not None:
            c.execute("UPDATE models.coefficients AS v SET estimate = b.estimate, std_error = b.std_error, "
                      "p_value = b.p_value FROM models.coefficients AS b WHERE v.model = ? AND b.model = ? "
                      "AND v.term = b.term", [model, like])
        for stat, value in (stats or {}).items():
            c.execute("UPDATE models.fit_stats SET value = ?, text = NULL WHERE model = ? AND stat = ?",
                      [value, model, stat])


def test_a_variant_with_the_baseline_estimates_is_a_note_and_a_shorter_sample_is_named(tmp_path):
    """On data of 2009-2011 the years_2007_2012 variant was shown as a column reading "years
    pinned to 2007-2012", with the baseline's estimates to the last digit; and a variant
    estimated on fewer years than it pins said nothing of it."""
    import dagster as dg

    spec, resources = _robustness_setup(tmp_path)
    db = resources["warehouse"].database
    _set_fit(db, "table2_variant_years_2007_2012", like="outsourcing_probit")
    _set_fit(db, "table2_variant_logit", stats={"sample_first_year": 2009, "sample_last_year": 2011})
    result = dg.materialize([_table2_robustness_asset(spec)], resources=resources, raise_on_error=False)
    assert result.success
    md = (tmp_path / "reports" / "table2_robustness.md").read_text()
    header = md.splitlines()[2]
    assert "years_2007_2012" not in header and "logit" in header
    assert "years_2007_2012: the same estimates as the baseline on these data" in md
    # the logit variant pins no years: nothing to say; a variant pinning 2007-2012 estimated
    # on 2009-2011 says so
    assert "Estimated on 2009-2011" not in md
    _set_fit(db, "table2_variant_years_2007_2012", stats={"sample_first_year": 2009, "sample_last_year": 2011})
    with duckdb.connect(db) as c:
        c.execute("UPDATE models.coefficients SET estimate = estimate * 1.05 "
                  "WHERE model = 'table2_variant_years_2007_2012'")
    (tmp_path / "reports" / "table2_robustness.md").unlink()
    assert dg.materialize([_table2_robustness_asset(spec)], resources=resources, raise_on_error=False).success
    md = (tmp_path / "reports" / "table2_robustness.md").read_text()
    assert "years_2007_2012" in md.splitlines()[2]
    assert "Estimated on 2009-2011: the data hold no other year of the ones it asks for." in md


@pytest.mark.parametrize("stale", ["baseline", "logit"])
def test_a_column_fitted_under_other_model_settings_is_refused(tmp_path, stale):
    import dagster as dg

    spec, resources = _robustness_setup(tmp_path, stale=stale)
    result = dg.materialize([_table2_robustness_asset(spec)], resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = failure.step_failure_data.user_failure_data.description
    model = "outsourcing_probit" if stale == "baseline" else "table2_variant_logit"
    assert f"the fit {model} was made" in text and "model.cov_type" in text and f"Re-materialize {model}" in text
    assert not (tmp_path / "reports" / "table2_robustness.md").exists()


@pytest.mark.parametrize("made_from", ["baseline", "logit"])
def test_a_column_fitted_on_a_panel_since_changed_is_refused(tmp_path, made_from):
    """A fit made from the panel as it was before a new year was loaded (the robustness table
    alone re-materialized from the UI) is refused, naming the fit and the table that changed;
    unchanged, the table renders."""
    import dagster as dg

    spec, resources = _robustness_setup(tmp_path, from_panel=made_from)
    asset = _table2_robustness_asset(spec)
    assert dg.materialize([asset], resources=resources, raise_on_error=False).success
    (tmp_path / "reports" / "table2_robustness.md").unlink()
    with duckdb.connect(resources["warehouse"].database) as c:
        c.execute("INSERT INTO panel.model_panel VALUES ('f99', 2013)")
    result = dg.materialize([asset], resources=resources, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = failure.step_failure_data.user_failure_data.description
    model = "outsourcing_probit" if made_from == "baseline" else "table2_variant_logit"
    assert f"the fit {model} was made from panel.model_panel as it was then, and it has changed since" in text
    assert "Re-materialize" in text
    assert not (tmp_path / "reports" / "table2_robustness.md").exists()


def test_the_initial_outcome_row_names_every_columns_initial_year():
    """One label naming the baseline's year misnamed a column whose sample starts later (the
    variant estimated from 2007 starts its firms in 2006)."""
    label = rb.initial_outcome_label
    assert label("Initial outcome (y_{initial_year})", [2005, 2005, None, 2005]) is None
    assert label("Initial outcome (y_{initial_year})", [2005, 2005, 2006, None, 2006]) == \
        "Initial outcome (y_2005; y_2006 in (3), (5))"
    assert label("Initial outcome in {initial_year}", [2005, 2007, 2006]) == \
        "Initial outcome in 2005; 2006 in (3); 2007 in (2)"
    assert label("Initial outcome", [2005, 2006]) == "Initial outcome (2005; 2006 in (2))"


def test_the_robustness_table_labels_the_initial_outcome_of_each_column(tmp_path):
    """Through the asset, with the shipped variants: the years_2007_2012 column's initial
    outcome is y_2006 (its firms' first year from 2006 on), the others' y_2005."""
    import dagster as dg

    spec, resources = _robustness_setup(tmp_path)
    result = dg.materialize([_table2_robustness_asset(spec)], resources=resources, raise_on_error=False)
    assert result.success
    md = (tmp_path / "reports" / "table2_robustness.md").read_text()
    header = [c.strip() for c in md.splitlines()[2].split("|")]
    col = next(i for i, c in enumerate(h for h in header if h.startswith("(")) if "years_2007_2012" in c) + 1
    assert f"| Initial outcome (y_2005; y_2006 in ({col})) |" in md, md
    assert "| Initial outcome (y_2005) |" not in md
