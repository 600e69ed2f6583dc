"""Cox model on (start, stop] data: R/lifelines results, clustered errors, PH test, Table 3 spec."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from offshoring.econometrics import (
    CollinearityError,
    ConvergenceError,
    CoxPH,
    PerfectPredictionError,
    build_cox_sample,
    fit_cox_table3,
    load_cox_spec,
)
from offshoring.econometrics.simulate import simulate_spell_years

import lifelines  # noqa: E402  required (requirements.lock): missing, the module fails, never skips
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


# ------------------------------------------------- risk sets over many magnitudes


def _efron_loglike_brute(X, start, stop, event, beta):
    """Efron's log partial likelihood event time by event time, each risk set summed on its
    own scale (log-sum-exp): the reference for weights of any size."""
    eta = X @ beta
    llf = 0.0
    for t in np.unique(stop[event == 1]):
        risk = (start < t) & (t <= stop)
        dead = (stop == t) & (event == 1)
        c = eta[risk].max()
        s_risk = np.exp(eta[risk] - c).sum()
        s_dead = np.exp(eta[dead] - c).sum()
        d = int(dead.sum())
        llf += eta[dead].sum() - sum(np.log(s_risk - l / d * s_dead) + c for l in range(d))
    return llf


def _magnitudes_data(seed=0):
    """Rows with x = 1 are at risk only at the first event time and half of them end there;
    the later risk sets hold rows with x = 0 only, so at a large coefficient of x their
    weights exp(x'b) are 1e-26 and less of the first risk set's."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(10):                       # x = 1: (0, 1], half end at 1
        rows.append((i, 0.0, 1.0, float(i % 2), 1.0, rng.normal()))
    for i in range(10, 40):                   # x = 0: one row a year up to 3, some end at 2 or 3
        end = 2 if i % 5 == 0 else (3 if i % 5 == 1 else None)
        for a in range(3):
            rows.append((i, float(a), a + 1.0, float(end == a + 1), 0.0, rng.normal()))
            if end == a + 1:
                break
    df = pd.DataFrame(rows, columns=["id", "start", "stop", "event", "x", "z"])
    return df


def test_risk_sets_of_weights_many_orders_of_magnitude_apart():
    """Regression: the risk-set sums were running sums (add a row's weight when it enters,
    subtract it when it leaves). With weights 1 in the first risk set and 1e-26 in the
    later ones the later sums came out as rounding noise, zero or negative, and the fit
    stopped with 'empty risk set at an event time' (600-firm synthetic world, seed 2)."""
    df = _magnitudes_data()
    X = df[["x", "z"]].to_numpy()
    start, stop, event = (df[c].to_numpy() for c in ("start", "stop", "event"))
    model = CoxPH(df[["x", "z"]], df.start, df.stop, df.event, groups=df.id)
    Xc = X - X.mean(axis=0)
    for beta in ([0.3, -0.2], [60.0, 0.4], [200.0, -1.0]):
        beta = np.asarray(beta)
        ref = _efron_loglike_brute(Xc, start, stop, event, beta)
        assert model.loglike(beta) == pytest.approx(ref, rel=1e-12, abs=1e-12)
        ev = model._evaluate(beta, order=2)
        h = 1e-5
        num_grad = np.array([(_efron_loglike_brute(Xc, start, stop, event, beta + h * e)
                              - _efron_loglike_brute(Xc, start, stop, event, beta - h * e)) / (2 * h)
                             for e in np.eye(2)])
        np.testing.assert_allclose(ev["grad"], num_grad, rtol=1e-6, atol=1e-8)
        h = 1e-3  # second differences: a longer step against rounding
        num_info = -np.array([[(_efron_loglike_brute(Xc, start, stop, event, beta + h * (ei + ej))
                                - _efron_loglike_brute(Xc, start, stop, event, beta + h * (ei - ej))
                                - _efron_loglike_brute(Xc, start, stop, event, beta - h * (ei - ej))
                                + _efron_loglike_brute(Xc, start, stop, event, beta - h * (ei + ej))) / (4 * h * h)
                               for ej in np.eye(2)] for ei in np.eye(2)])
        np.testing.assert_allclose(ev["info"], num_info, rtol=1e-5, atol=1e-6)
        # the score residuals add up to the score, row by row from the same risk sets
        np.testing.assert_allclose(ev["score_resid"].sum(axis=0), ev["grad"], rtol=1e-9, atol=1e-12)
    # the likelihood rises without end in the coefficient of x: said plainly, wherever the
    # iterations start
    for start_params in (None, [60.0, 0.0]):
        with pytest.raises(PerfectPredictionError, match=r"\['x'\]"):
            model.fit(start_params=start_params)
    with pytest.raises(ConvergenceError, match="underflows"):   # no place to start from
        model.fit(start_params=[800.0, 0.0])


def test_table3_names_a_dummy_level_without_events():
    """A territorial level in which no spell ends has no finite hazard ratio: the fit
    says which level it is (a base level: all the others' ratios are infinite)."""
    frame, _ = simulate_spell_years(n_firms=1500, seed=4)
    no_south = frame.with_columns(pl.when(pl.col("macro_area") == "South").then(0)
                                  .otherwise(pl.col("event")).cast(frame["event"].dtype).alias("event"))
    s = build_cox_sample(no_south)
    assert s.description["levels_without_events"] == {"macro_area": {"South": int((s.data["macro_area"] == "South").sum())}}
    with pytest.raises(PerfectPredictionError, match=r"area_south.*macro_area = 'South' \(area_south"):
        fit_cox_table3(no_south)
    no_base = frame.with_columns(pl.when(pl.col("macro_area") == "North-West").then(0)
                                 .otherwise(pl.col("event")).cast(frame["event"].dtype).alias("event"))
    with pytest.raises(PerfectPredictionError, match="'North-West', the base level"):
        fit_cox_table3(no_base)
    assert build_cox_sample(frame).description["levels_without_events"] == {}


def one_row_level_without_event():
    """The simulated spell-years with the Islands reduced to one spell-year that does not
    end (the other Islands rows moved to the South)."""
    frame, _ = simulate_spell_years(n_firms=1500, seed=4)
    frame = frame.with_row_index("_i")
    pick = frame.filter((pl.col("event") == 0) & (pl.col("stop") == 1) & ~pl.col("left_censored")
                        & (pl.col("macro_area") != "Islands"))["_i"][0]
    return frame.with_columns(pl.when(pl.col("_i") == pick).then(pl.lit("Islands"))
                              .when(pl.col("macro_area") == "Islands").then(pl.lit("South"))
                              .otherwise(pl.col("macro_area")).alias("macro_area")).drop("_i")


def test_a_rare_level_without_events_is_not_an_estimate():
    """Regression: a level of one row and no event has a standard deviation of 0.01, so its
    runaway coefficient looked small per s.d. (|b s.d.| < 10): the fit returned a hazard
    ratio of e^-27 with a (clustered) s.e. of 1 (the 2500-firm synthetic worlds of seeds 2
    and 9, Islands). The last Newton step still moving the coefficient outwards by about
    one unit gives it away."""
    with pytest.raises(PerfectPredictionError, match=r"\['area_islands'\].*'Islands' \(area_islands, 1 row\)"):
        fit_cox_table3(one_row_level_without_event())


def test_first_spell_year_leaves_out_spells_begun_before_it():
    """`first_spell_year` (the paper's "started outsourcing ... during 2007-2012" read
    literally): every spell-year of a spell begun earlier is left out, and counted."""
    import dataclasses

    from offshoring.econometrics.cox import build_cox_sample
    from offshoring.econometrics.model_specs import load_cox_spec

    frame, _ = simulate_spell_years(n_firms=300, seed=7)
    df = frame.to_pandas()
    began = df["year"] - df["start"]
    spec = load_cox_spec(None)
    base = build_cox_sample(df, dataclasses.replace(spec, dummies={}))
    later = build_cox_sample(df, dataclasses.replace(spec, dummies={}, first_spell_year=2008))
    kept = (later.data["year"] - later.data["start"])
    assert kept.min() >= 2008 and (base.data["year"] - base.data["start"]).min() < 2008
    eligible = df["destination"].isin(spec.destinations) & ~df["left_censored"].fillna(False).astype(bool)
    assert later.description["rows_dropped"]["spell began before 2008"] == int((eligible & (began < 2008)).sum()) > 0
    assert len(later.data) == int((base.data["year"] - base.data["start"] >= 2008).sum())
    with pytest.raises(ValueError, match="first_spell_year must be a year"):
        dataclasses.replace(spec, first_spell_year="2007")
