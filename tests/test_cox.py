"""Cox model on (start, stop] data: R/lifelines results, clustered errors, PH test, Table 3 spec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from offshoring.econometrics import (
    CollinearityError,
    CoxPH,
    PerfectPredictionError,
    build_cox_sample,
    fit_cox_table3,
    load_cox_spec,
)
from offshoring.econometrics.simulate import simulate_spell_years

lifelines = pytest.importorskip("lifelines")
from lifelines import CoxPHFitter, CoxTimeVaryingFitter  # noqa: E402
from lifelines.datasets import load_rossi  # noqa: E402
from lifelines.statistics import proportional_hazard_test  # noqa: E402

COVS = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]


@pytest.fixture(scope="module")
def rossi():
    df = load_rossi()
    df["id"] = np.arange(len(df))
    df["start"] = 0
    return df


@pytest.fixture(scope="module")
def rossi_fit(rossi):
    return CoxPH(rossi[COVS], rossi.start, rossi.week, rossi.arrest, groups=rossi.id).fit()


def split_spells(df, cuts=(10, 20, 30, 40)):
    """Cut each subject's (0, week] into pieces at the given weeks; the event stays at the end."""
    rows = []
    for rec in df.to_dict("records"):
        edges = [0, *[c for c in cuts if c < rec["week"]], rec["week"]]
        for a, b in zip(edges[:-1], edges[1:]):
            rows.append({**rec, "start": a, "stop": b, "arrest": rec["arrest"] if b == rec["week"] else 0})
    return pd.DataFrame(rows)


def untied(df):
    """Rossi with ties broken (distinct times), where every tie method agrees."""
    out = df.copy()
    out["week"] = out["week"] - 0.001 * out.groupby("week").cumcount()
    return out


# -------------------------------------------------------------------- Rossi / R


def test_rossi_matches_r_coxph(rossi_fit):
    # R: coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = Rossi)
    #    fin  coef -0.37942  se(coef) 0.19138
    r = rossi_fit
    assert round(r.params["fin"], 4) == round(-0.37942, 4)
    assert abs(r.params["fin"] - -0.37942) < 5e-5
    assert abs(r.bse_oim["fin"] - 0.19138) < 5e-5
    assert r.n_events == 114 and r.nobs == 432 and r.ngroups == 432


def test_rossi_matches_lifelines_everywhere(rossi, rossi_fit):
    cph = CoxPHFitter().fit(rossi[[*COVS, "week", "arrest"]], "week", "arrest")
    assert np.allclose(rossi_fit.params, cph.params_, atol=1e-7)
    assert np.allclose(rossi_fit.bse_oim, cph.standard_errors_, atol=1e-7)
    assert rossi_fit.llf == pytest.approx(cph.log_likelihood_, abs=1e-7)
    hr = rossi_fit.hazard_ratios
    ci = rossi_fit.hazard_ratio_conf_int()
    assert np.allclose(hr, np.exp(cph.params_))
    assert np.all((ci["lower"] < hr) & (hr < ci["upper"]))


def test_results_interface(rossi_fit):
    r = rossi_fit
    assert list(r.params.index) == COVS and list(r.bse.index) == COVS
    assert r.cov_type == "cluster"
    table = r.summary().table
    assert {"coef", "exp(coef)", "std err", "std err (oim)"} <= set(table.columns)
    assert "Cox proportional hazards" in str(r.summary())
    assert r.lr_test["df"] == len(COVS) and r.lr_test["stat"] > 0
    # score and Schoenfeld residuals sum to the score, zero at the estimates
    assert np.allclose(r.score_residuals().sum(), r.score, atol=1e-10)
    assert np.allclose(r.schoenfeld_residuals().sum(), r.score, atol=1e-10)
    assert np.all(np.abs(r.score) < 1e-5)


# ------------------------------------------------------- clustered standard errors


def test_cluster_errors_without_ties_match_lifelines(rossi):
    df = untied(rossi)
    ours = CoxPH(df[COVS], df.start, df.week, df.arrest, groups=df.id).fit()
    cph = CoxPHFitter().fit(df[[*COVS, "week", "arrest"]], "week", "arrest", robust=True)
    assert np.allclose(ours.params, cph.params_, atol=1e-7)
    assert np.allclose(ours.bse_cluster, cph.standard_errors_, rtol=1e-6)
    # with real clusters too
    df["cl"] = df["id"] // 3
    ours = CoxPH(df[COVS], df.start, df.week, df.arrest, groups=df.cl).fit()
    cph = CoxPHFitter().fit(df[[*COVS, "week", "arrest", "cl"]], "week", "arrest", cluster_col="cl")
    assert np.allclose(ours.bse_cluster, cph.standard_errors_, rtol=1e-6)


def test_splitting_spells_changes_nothing(rossi, rossi_fit):
    sp = split_spells(rossi)
    assert len(sp) > 3 * len(rossi)
    r2 = CoxPH(sp[COVS], sp.start, sp.stop, sp.arrest, groups=sp.id).fit()
    assert np.allclose(r2.params, rossi_fit.params, atol=1e-10)
    assert np.allclose(r2.bse_oim, rossi_fit.bse_oim, atol=1e-10)
    assert np.allclose(r2.bse_cluster, rossi_fit.bse_cluster, atol=1e-10)
    assert r2.llf == pytest.approx(rossi_fit.llf, abs=1e-9)
    # and so do rows cut where there are no events at all
    sp2 = split_spells(rossi, cuts=(0.5, 7.25, 33.3))
    r3 = CoxPH(sp2[COVS], sp2.start, sp2.stop, sp2.arrest, groups=sp2.id).fit()
    assert np.allclose(r3.bse_cluster, rossi_fit.bse_cluster, atol=1e-10)


def test_cluster_correction_factor(rossi):
    df = rossi.assign(cl=rossi["id"] // 4)
    m = CoxPH(df[COVS], df.start, df.week, df.arrest, groups=df.cl)
    plain, adj = m.fit(), m.fit(cluster_correction=True)
    G = df.cl.nunique()
    assert np.allclose(adj.bse / plain.bse, np.sqrt(G / (G - 1)))
    assert m.fit(cov_type="oim").cov_type == "oim"


def test_time_varying_data_match_lifelines_ctv():
    frame, _ = simulate_spell_years(n_firms=300, seed=7)
    df = frame.to_pandas()
    df["spell"] = df["firm_id"] + df["destination"] + df["spell_no"].astype(str)
    covs = ["share_destination", "profit", "employees", "roi"]
    ours = CoxPH.from_frame(df, covs, cluster="firm_id").fit()
    ctv = CoxTimeVaryingFitter().fit(
        df[["spell", "start", "stop", "event", *covs]], id_col="spell", event_col="event",
        start_col="start", stop_col="stop",
    )
    assert np.allclose(ours.params, ctv.params_, atol=1e-6)
    assert np.allclose(ours.bse_oim, ctv.standard_errors_, rtol=1e-5)
    assert ours.llf == pytest.approx(ctv.log_likelihood_, abs=1e-6)


def test_strata_match_lifelines(rossi):
    covs = ["fin", "age", "prio", "paro"]
    ours = CoxPH(rossi[covs], rossi.start, rossi.week, rossi.arrest, strata=rossi.race).fit()
    cph = CoxPHFitter().fit(rossi[[*covs, "race", "week", "arrest"]], "week", "arrest", strata=["race"])
    assert np.allclose(ours.params, cph.params_, atol=1e-7)
    assert np.allclose(ours.bse_oim, cph.standard_errors_, atol=1e-7)


def test_breslow_equals_efron_without_ties(rossi):
    df = untied(rossi)
    a = CoxPH(df[COVS], df.start, df.week, df.arrest, ties="efron").fit()
    b = CoxPH(df[COVS], df.start, df.week, df.arrest, ties="breslow").fit()
    assert np.allclose(a.params, b.params, atol=1e-10)
    tied_b = CoxPH(rossi[COVS], rossi.start, rossi.week, rossi.arrest, ties="breslow").fit()
    assert not np.allclose(tied_b.params, a.params, atol=1e-4)


# ------------------------------------------------------------------ PH test


def test_ph_test_matches_lifelines(rossi, rossi_fit):
    cph = CoxPHFitter().fit(rossi[[*COVS, "week", "arrest"]], "week", "arrest")
    for transform in ("identity", "log"):
        ours = rossi_fit.ph_test(transform)
        theirs = proportional_hazard_test(cph, rossi[[*COVS, "week", "arrest"]], time_transform=transform)
        assert np.allclose(ours["chi2"].to_numpy()[:-1], theirs.test_statistic, rtol=1e-6)
    km = rossi_fit.ph_test("km")
    assert list(km.index) == [*COVS, "GLOBAL"]
    assert km.loc["GLOBAL", "df"] == len(COVS)
    # age is the covariate whose effect changes with time in these data
    assert km["P>chi2"].idxmin() == "age" and km.loc["age", "P>chi2"] < 0.01
    # invariant to splitting spells too
    sp = split_spells(rossi)
    r2 = CoxPH(sp[COVS], sp.start, sp.stop, sp.arrest, groups=sp.id).fit()
    assert np.allclose(r2.ph_test("km")["chi2"], km["chi2"], rtol=1e-8)


# ------------------------------------------------------------------- errors


def test_errors(rossi):
    X = rossi[COVS].copy()
    X["prio2"] = 2 * X["prio"] + X["age"]
    with pytest.raises(CollinearityError, match="prio2"):
        CoxPH(X, rossi.start, rossi.week, rossi.arrest)
    with pytest.raises(CollinearityError, match="do not vary"):
        CoxPH(rossi[COVS].assign(one=1.0), rossi.start, rossi.week, rossi.arrest)
    with pytest.raises(ValueError, match="stop <= start"):
        CoxPH(rossi[COVS], rossi.week, rossi.week, rossi.arrest)
    with pytest.raises(ValueError, match="no events"):
        CoxPH(rossi[COVS], rossi.start, rossi.week, 0 * rossi.arrest)
    with pytest.raises(ValueError, match="needs groups"):
        CoxPH(rossi[COVS], rossi.start, rossi.week, rossi.arrest).fit(cov_type="cluster")
    # a covariate that is 1 exactly for the spells that end: monotone likelihood
    sep = rossi[["age"]].assign(sep=rossi.arrest.astype(float))
    with pytest.raises(PerfectPredictionError, match="sep"):
        CoxPH(sep, rossi.start, rossi.week, rossi.arrest).fit()


# ------------------------------------------------------ Table 3 spec, recovery


def test_table3_spec_file():
    spec = load_cox_spec()
    assert spec.covariates == (
        "share_destination", "supplier", "profit", "export_share_pre", "wage_per_employee_k",
        "roi", "employees", "n_outsourcing_prov_pre", "n_migrant_prov_lag",
    )
    assert spec.labels["profit"] == "Profits (1 if yes)"
    assert spec.ties == "efron" and spec.cluster == "firm_id" and spec.exclude_left_censored
    with pytest.raises(ValueError, match="unknown keys"):
        load_cox_spec({"covariate": ["x"]})


def test_table3_sample_filters():
    frame, _ = simulate_spell_years(n_firms=200, seed=1)
    extra = frame.head(5).with_columns(pl.lit("any").alias("destination"))
    s = build_cox_sample(pl.concat([frame, extra]))
    d = s.description
    assert d["rows_dropped"]["destination not in the spec"] == 5
    assert d["rows_dropped"]["left-censored spell"] == int(frame["left_censored"].sum())
    assert not s.data["left_censored"].any()
    assert s.exog_names[:9] == list(load_cox_spec().covariates)
    assert s.exog_names[9:] == ["footwear", "area_north_east", "area_centre", "area_south", "area_islands"]
    keep_lc = build_cox_sample(frame, {"exclude_left_censored": False})
    assert keep_lc.description["rows"] == frame.height


def test_recovery_on_simulated_spells():
    frame, truth = simulate_spell_years(n_firms=2500, seed=3)
    r = fit_cox_table3(frame)
    assert r.cov_type == "cluster" and r.ngroups == r.sample.description["clusters"]
    truth = pd.Series(truth)[r.params.index]
    z = (r.params - truth) / r.bse
    assert np.all(np.abs(z) < 3.29), z[np.abs(z) >= 3.29]
    assert np.mean(np.abs(z) < 1.96) >= 0.8
    ci = r.conf_int(0.001)
    assert np.all((ci[0] < truth) & (truth < ci[1]))
    assert "Share of outsourcing costs in the foreign region" in str(r.summary())
