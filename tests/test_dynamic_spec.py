"""Estimation sample of the dynamic probit: lags, initial conditions, Mundlak means, spec file."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import yaml

from offshoring.econometrics import DynamicSpec, build_dynamic_sample, load_dynamic_spec
from offshoring.econometrics.simulate import simulate_firm_years
from offshoring.settings import defaults_config_dir

EXPECTED_COLUMNS = [
    "const", "y_initial", "y_lag", "export_ratio_lag", "market_area_order_lag",
    "credit_access_lag", "va_per_employee_k_lag", "supplier_lag", "district",
    "n_offshoring_prov_lag", "n_outsourcing_prov_lag", "footwear", "area_north_east",
    "area_centre", "area_south", "area_islands",
    "mean_export_ratio_lag", "init_export_ratio",
    "mean_market_area_order_lag", "init_market_area_order",
    "mean_credit_access_lag", "init_credit_access",
    "mean_va_per_employee_k_lag", "init_va_per_employee_k",
    "mean_supplier_lag", "init_supplier",
]


def firm(fid, years, y, x, supplier=None, sector="clothing", area="Centre", district=0):
    """Rows of one firm; x is export_ratio by year, other covariates derived from it."""
    n = len(years)
    supplier = supplier if supplier is not None else [i % 2 for i in range(n)]
    return [
        {
            "firm_id": fid,
            "year": yr,
            "outsourcing": y[i],
            "export_ratio": x[i],
            "market_area_order": 1 + (i % 5),
            "credit_access": (i + 1) % 2,
            "va_per_employee_k": 30.0 + 2 * i + (0.5 if fid == "B" else 0.0),
            "supplier": supplier[i],
            "district": district,
            "n_offshoring_prov_lag": 2.0 + i,
            "n_outsourcing_prov_lag": 10.0 + yr - 2005,
            "sector": sector,
            "macro_area": area,
        }
        for i, yr in enumerate(years)
    ]


@pytest.fixture
def tiny_panel():
    rows = []
    rows += firm("A", [2005, 2006, 2007, 2008], [1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])
    # B enters late: initial period 2007
    rows += firm("B", [2007, 2008, 2009], [0, 1, 1], [0.5, 0.6, 0.7], sector="footwear", area="South", district=1)
    # C has a gap in 2007: its 2008 row has no t-1 row
    rows += firm("C", [2005, 2006, 2008, 2009], [0, 0, 1, 0], [0.0, 0.1, 0.2, 0.3], area="North-West")
    return pl.DataFrame(rows)


def test_default_spec_file_matches_the_dataclass_defaults():
    spec = load_dynamic_spec()
    default = DynamicSpec()
    for name in ("outcome", "lagged", "contemporaneous", "counts", "dummies", "mundlak",
                 "initial_values", "first_year", "last_year", "initial_period",
                 "quad_points", "adaptive", "cov_type", "link"):
        assert getattr(spec, name) == getattr(default, name), name
    assert spec.exog_names == EXPECTED_COLUMNS
    assert spec.cov_type == "cluster" and spec.quad_points == 12


def test_lags_initial_values_and_means(tiny_panel):
    s = build_dynamic_sample(tiny_panel)
    X = s.data.rename(columns={"firm_id": "firm"})
    d = s.description
    # A: 2006-2008 (initial 2005); B: 2008-2009 (initial 2007); C: 2006, 2009 (2008 lacks t-1)
    assert sorted(zip(X.firm, X.year)) == [
        ("A", 2006), ("A", 2007), ("A", 2008), ("B", 2008), ("B", 2009), ("C", 2006), ("C", 2009),
    ]
    assert d["rows_dropped"] == {"no row for the firm in t-1 (panel gap)": 1}
    assert d["n_obs"] == 7 and d["n_firms"] == 3
    assert d["initial_years"] == {2005: 2, 2007: 1}
    a = X[X.firm == "A"].set_index("year")
    assert list(a.y_lag) == [1, 0, 1]
    assert list(a.export_ratio_lag) == pytest.approx([0.1, 0.2, 0.3])
    assert set(a.y_initial) == {1}
    assert np.allclose(a.init_export_ratio, 0.1)
    assert np.allclose(a.mean_export_ratio_lag, 0.2)
    b = X[X.firm == "B"].set_index("year")
    assert list(b.y_lag) == [0, 1] and set(b.y_initial) == {0}
    assert np.allclose(b.init_export_ratio, 0.5)
    assert np.allclose(b.mean_export_ratio_lag, 0.55)
    assert set(b.footwear) == {1} and set(b.area_south) == {1} and set(b.district) == {1}
    c = X[X.firm == "C"].set_index("year")
    # means over C's estimation observations only (2006 and 2009: x at 2005 and 2008)
    assert np.allclose(c.mean_export_ratio_lag, 0.1)
    assert (c[["area_north_east", "area_centre", "area_south", "area_islands"]] == 0).all().all()
    # province counts are used as they are (already lagged in the panel)
    assert list(a.n_outsourcing_prov_lag) == [11.0, 12.0, 13.0]
    assert list(s.endog[X.firm == "A"]) == [0, 1, 1]
    assert list(s.exog.columns[:3]) == ["const", "y_initial", "y_lag"]


def test_common_initial_year_drops_firms_absent_that_year(tiny_panel):
    s = build_dynamic_sample(tiny_panel, {"initial_period": 2005})
    assert set(s.groups) == {"A", "C"}
    assert s.description["firms_dropped"] == {"no row in the common initial year 2005": 1}
    assert "common initial year 2005" in s.description["initial_period"]


def test_collinear_mundlak_columns_are_dropped_and_reported():
    # supplier constant within every firm: its mean and initial value equal its lag
    panel, _ = simulate_firm_years(n_firms=300, seed=4)
    panel = panel.with_columns(pl.col("supplier").first().over("firm_id").alias("supplier"))
    s = build_dynamic_sample(panel)
    dropped = s.description["columns_dropped"]
    assert "mean_supplier_lag" in dropped and "init_supplier" in dropped
    assert "supplier_lag" in s.exog.columns
    assert "mean_supplier_lag" not in s.exog.columns
    assert s.description["other_collinear_columns"] == []


def test_empty_dummy_levels_are_dropped(tiny_panel):
    s = build_dynamic_sample(tiny_panel)
    assert s.description["columns_dropped"]["area_islands"] == "dummy with no observations in its level"
    assert "area_islands" not in s.exog.columns


def test_missing_values_drop_rows_with_reasons(tiny_panel):
    panel = tiny_panel.with_columns(
        pl.when((pl.col("firm_id") == "A") & (pl.col("year") == 2006)).then(None)
        .otherwise(pl.col("va_per_employee_k")).alias("va_per_employee_k")
    )
    s = build_dynamic_sample(panel)
    # A's 2006 value is the lag of its 2007 observation
    assert s.description["rows_dropped"]["missing va_per_employee_k at t-1"] == 1
    assert ("A", 2007) not in set(zip(s.groups, s.time))


def test_spec_changes_flow_through(tiny_panel, tmp_path):
    spec = yaml.safe_load((defaults_config_dir() / "probit_table2.yaml").read_text())
    spec["lagged"] = ["export_ratio", "supplier"]
    spec["mundlak"] = ["export_ratio"]
    spec["year_dummies"] = True
    spec["initial_values"] = False
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    s = build_dynamic_sample(tiny_panel, path)
    cols = list(s.data.columns)
    assert "market_area_order_lag" not in cols and "supplier_lag" in cols
    assert "mean_export_ratio_lag" in cols and "init_export_ratio" not in cols
    assert [c for c in cols if c.startswith("year_")] == ["year_2007", "year_2008", "year_2009"]


def test_bad_specs_and_data(tiny_panel):
    with pytest.raises(ValueError, match="unknown keys"):
        load_dynamic_spec({"lagged": ["export_ratio"], "mundlak_typo": []})
    with pytest.raises(ValueError, match="mundlak"):
        load_dynamic_spec({"mundlak": ["district"]})
    with pytest.raises(ValueError, match="levels not in the spec"):
        build_dynamic_sample(tiny_panel.with_columns(pl.lit("Mars").alias("macro_area")))
    with pytest.raises(KeyError, match="supplier"):
        build_dynamic_sample(tiny_panel.drop("supplier"))
    with pytest.raises(ValueError, match="duplicated"):
        build_dynamic_sample(pl.concat([tiny_panel, tiny_panel.head(1)]))


def test_simulated_panel_has_the_contract_columns():
    panel, truth = simulate_firm_years(n_firms=400, seed=3)
    s = build_dynamic_sample(panel)
    assert list(s.exog.columns) == EXPECTED_COLUMNS
    assert set(truth) == set(EXPECTED_COLUMNS) | {"lnsig2u"}
    assert s.description["estimation_years"] == list(range(2006, 2013))
    assert s.description["rows_dropped"] == {}
    assert s.endog.name == "outsourcing"
    assert np.isin(s.endog.unique(), [0, 1]).all()


def test_the_design_is_held_once():
    """One float64 array holds the design; the pandas frames are views of it and the
    model reads it in place, keeping only its group-level and time-varying parts."""
    panel, _ = simulate_firm_years(n_firms=400, seed=3)
    s = build_dynamic_sample(panel)
    assert s.X.dtype == np.float64 and s.X.flags.f_contiguous
    assert s.X.shape == (len(s.y), len(s.exog_names))
    assert np.shares_memory(s.exog.to_numpy(), s.X)
    assert np.shares_memory(s.endog.to_numpy(), s.y)
    assert list(s.exog.columns) == s.exog_names == EXPECTED_COLUMNS
    model = s.model()
    arrays = {k: v for k, v in vars(model).items() if isinstance(v, np.ndarray)}
    assert not any(np.shares_memory(v, s.X) for v in arrays.values())
    design_bytes = sum(v.nbytes for k, v in arrays.items() if k in ("_Xg", "_Xv"))
    assert design_bytes < s.X.nbytes  # the constant-within-firm columns once per firm
    assert not any(v.ndim == 2 and v.shape[0] == model.nobs and v.shape[1] == model.k_exog
                   for v in arrays.values())
    # the full matrix is rebuilt on request, equal to the sample's (rows sorted by firm)
    np.testing.assert_array_equal(model.X, s.X)
    # data: built on request, every constructed column with firm, year and outcome
    d = s.data
    assert list(d.columns) == ["firm_id", "year", *EXPECTED_COLUMNS, "outsourcing"]
    assert not np.shares_memory(d["const"].to_numpy(), s.X)


def test_dropped_columns_stay_in_data(tiny_panel):
    s = build_dynamic_sample(tiny_panel)
    assert "area_islands" not in s.exog_names and s.X.shape[1] == len(s.exog_names)
    assert "area_islands" in s.data.columns and not s.data["area_islands"].any()


def test_in_place_design_fits_as_a_shuffled_copy():
    """The sorted sample read in place and the same rows given shuffled as pandas
    frames (sorted by the model into its own copy) give the same fit."""
    from offshoring.econometrics import RandomEffectsProbit

    panel, _ = simulate_firm_years(n_firms=600, seed=5)
    s = build_dynamic_sample(panel)
    a = s.fit(cov_type="cluster")
    perm = np.random.default_rng(0).permutation(len(s.y))
    exog = s.exog.iloc[perm].reset_index(drop=True).copy()
    b = RandomEffectsProbit(s.endog.iloc[perm].reset_index(drop=True), exog, s.groups[perm]).fit(
        cov_type="cluster")
    np.testing.assert_allclose(a.params_array, b.params_array, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.bse.to_numpy(), b.bse.to_numpy(), rtol=1e-7)
    assert a.llf == pytest.approx(b.llf, rel=1e-12)
    # predictions come back in the caller's row order
    np.testing.assert_allclose(a.predict()[perm], b.predict(), rtol=1e-9)


def test_row_order_does_not_matter_and_duplicates_are_counted(tiny_panel):
    """Lags come from the firm's row for t - 1 wherever it sits in the input (the sample
    sorts by firm and year and reads lags off the row before); duplicated keys are
    counted key by key, a key repeated three times once."""
    ref = build_dynamic_sample(tiny_panel)
    for seed in range(3):
        shuffled = build_dynamic_sample(tiny_panel.sample(fraction=1.0, shuffle=True, seed=seed))
        assert shuffled.exog_names == ref.exog_names
        assert np.array_equal(shuffled.X, ref.X) and np.array_equal(shuffled.y, ref.y)
        assert list(shuffled.groups) == list(ref.groups) and list(shuffled.time) == list(ref.time)
        assert shuffled.description == ref.description
    # a firm's only neighbour row in the file order is another firm's t - 1: never its lag
    interleaved = pl.concat([tiny_panel.filter(pl.col("firm_id") == "B"),
                             tiny_panel.filter(pl.col("firm_id") != "B")])
    assert build_dynamic_sample(interleaved).description == ref.description
    # C's 2008 row lacks 2007; a 2007 row of another firm right before it changes nothing
    assert ref.description["rows_dropped"] == {"no row for the firm in t-1 (panel gap)": 1}
    triple = pl.concat([tiny_panel, tiny_panel.head(1), tiny_panel.head(1), tiny_panel.tail(1)])
    with pytest.raises(ValueError, match=r"^2 duplicated \(firm_id, year\) keys"):
        build_dynamic_sample(triple)


def test_a_nan_firm_id_is_refused(tiny_panel):
    """NaN is not a firm id: a float id column with NaN is refused with the count, not grouped
    (the former joins matched NaN with NaN) nor dropped without a word."""
    ids = {"A": 1.0, "B": 2.0, "C": float("nan")}
    panel = tiny_panel.with_columns(pl.col("firm_id").replace_strict(ids, return_dtype=pl.Float64))
    with pytest.raises(ValueError, match=r"^4 rows of the panel have NaN as firm_id"):
        build_dynamic_sample(panel)
    ok = build_dynamic_sample(panel.filter(pl.col("firm_id").is_not_nan()))
    assert ok.description["n_firms"] == 2


def test_years_the_data_do_not_have_are_an_estimation_error(tiny_panel):
    """Years pinned outside the data (a variant's 2007-2012 on deliveries of 2014-2017) left no
    observation and raised a bare ValueError that failed the whole refresh; it is an
    EstimationError, which a robustness variant reports as "not fitted" in its table's notes."""
    from offshoring.econometrics import EmptySampleError, EstimationError

    with pytest.raises(EmptySampleError, match=r"no estimation observation left in the years 2015-2016") as err:
        build_dynamic_sample(tiny_panel, {"years": {"first": 2015, "last": 2016}})
    assert isinstance(err.value, EstimationError)


def test_a_column_the_panel_lacks_is_named_with_its_file_and_key():
    """`lagged: [export_ratioo]` reached the fit as DuckDB's "Referenced column not found",
    naming no file and no key."""
    import dataclasses

    from offshoring.econometrics.model_specs import missing_column_sentence
    from offshoring.spec import load_study_spec

    spec = load_study_spec(None)
    probit = dataclasses.replace(spec.probit, lagged=("export_ratioo", *spec.probit.lagged[1:]),
                                 mundlak=tuple(m for m in spec.probit.mundlak if m != "export_ratio"))
    columns = ["firm_id", "year", "outsourcing", "export_ratio", *spec.probit.lagged[1:],
               *spec.probit.contemporaneous, *spec.probit.counts, *spec.probit.dummies]
    assert missing_column_sentence(columns, spec.probit, "panel.model_panel", "probit_table2.yaml") is None
    text = missing_column_sentence(columns, probit, "panel.model_panel", "my/probit_table2.yaml")
    assert text.startswith("my/probit_table2.yaml: lagged names 'export_ratioo', which is no column of "
                           "panel.model_panel (did you mean 'export_ratio'?)")
    cox = dataclasses.replace(spec.cox, covariates=("roe", *spec.cox.covariates))
    text = missing_column_sentence(["roi", *spec.cox.covariates, *spec.cox.dummies], cox, "panel.spell_years", "c.yaml")
    assert text.startswith("c.yaml: covariates names 'roe', which is no column of panel.spell_years")
