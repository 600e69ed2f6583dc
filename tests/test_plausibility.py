"""Plausibility checks fire on the anomaly they exist for and stay silent on clean deliveries."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from offshoring import plausibility
from offshoring.spec import PlausibilitySpec, load_study_spec

BOUNDS = PlausibilitySpec(max_median_factor=3, ceiling_share_margin=0.02, max_share_above_ceiling=0.05)
CEILINGS = {y: 7_500_000.0 for y in range(2007, 2013)}


def _world(years=range(2007, 2012), n=400, seed=0, scale=None, above=None):
    """raw.survey_returns with log-normal amounts; `scale` {year: factor}, `above` {year: share}."""
    rng = np.random.default_rng(seed)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE TABLE raw.survey_returns (year INTEGER, turnover DOUBLE, "
                "employees DOUBLE, value_added DOUBLE, wage_costs DOUBLE)")
    for y in years:
        f = (scale or {}).get(y, 1.0)
        turnover = rng.lognormal(13.5, 1.0, n).clip(max=7_400_000)
        k = int(round((above or {}).get(y, 0.01) * n))
        turnover[:k] = 8_000_000 + rng.uniform(0, 1e6, k)
        employees = rng.uniform(1, 40, n)
        va = turnover * rng.uniform(0.2, 0.4, n)
        wages = va * rng.uniform(0.5, 0.7, n)
        con.executemany("INSERT INTO raw.survey_returns VALUES (?, ?, ?, ?, ?)",
                        [(y, t * f, e, v * f, w * f) for t, e, v, w in zip(turnover, employees, va, wages)])
    return con


def test_the_default_bounds_come_from_the_specification():
    assert load_study_spec().thresholds.plausibility == BOUNDS


def test_scale_check_silent_on_clean_years_and_a_crisis():
    con = _world(scale={2009: 0.75})  # a bad year: medians 25% down
    for y in range(2007, 2012):
        res = plausibility.amounts_on_usual_scale(con, y, BOUNDS)
        assert res.passed, res.description


def test_scale_check_fires_on_a_delivery_in_thousands():
    con = _world(scale={2010: 1 / 1000})
    res = plausibility.amounts_on_usual_scale(con, 2010, BOUNDS)
    assert not res.passed
    assert "turnover" in res.description and "value_added" in res.description
    assert "employees (median" not in res.description  # head counts are not money: unchanged
    assert res.metadata["compared_with_years"] == [2007, 2008, 2009, 2011]
    # the other years stay clean (one odd year moves their reference, the median, little)
    assert plausibility.amounts_on_usual_scale(con, 2008, BOUNDS).passed


def test_first_delivery_has_nothing_to_compare_with_and_says_it_was_not_checked():
    con = _world(years=[2008])
    scale = plausibility.amounts_on_usual_scale(con, 2008, BOUNDS)
    # passed only because a Dagster check has no "skipped" result: it says plainly it was not checked
    assert scale.passed and scale.description.startswith("NOT checked")
    assert scale.metadata["checked"] is False and scale.metadata["compared_with_years"] == []
    res = plausibility.turnover_above_ceiling(con, 2008, CEILINGS, BOUNDS)
    assert res.passed and "NOT compared with other years" in res.description
    assert res.metadata["compared_with_other_years"] is False
    assert res.metadata["returns_above_ceiling"] == 4


def test_ceiling_crossers_are_metadata_and_warn_only_when_their_share_jumps():
    con = _world(above={2010: 0.08})
    quiet = plausibility.turnover_above_ceiling(con, 2009, CEILINGS, BOUNDS)
    assert quiet.passed and quiet.metadata["returns_above_ceiling"] == 4
    assert quiet.metadata["share_above_ceiling"] == pytest.approx(0.01)
    loud = plausibility.turnover_above_ceiling(con, 2010, CEILINGS, BOUNDS)
    assert not loud.passed and "8.0%" in loud.description
    assert loud.metadata["returns_above_ceiling"] == 32


def test_scale_check_fails_on_a_measure_the_other_years_have_and_this_year_lacks():
    """Value added all empty and wage costs all 0 in one year: no median to compare, which is a
    failure naming them, not a measure skipped in silence."""
    con = _world()
    con.execute("UPDATE raw.survey_returns SET value_added = NULL, wage_costs = 0 WHERE year = 2010")
    res = plausibility.amounts_on_usual_scale(con, 2010, BOUNDS)
    assert not res.passed
    assert "value_added" in res.description and "wage_costs" in res.description
    assert "turnover" not in res.description  # present and on scale
    assert set(res.metadata["measures_missing"]) == {"value_added", "wage_costs", "value_added_per_employee"}
    # the other years stay clean: 2010's missing measures leave their reference (the others') intact
    assert plausibility.amounts_on_usual_scale(con, 2008, BOUNDS).passed
    # a measure no year has is not compared (nothing to compare with), and said so
    con.execute("UPDATE raw.survey_returns SET wage_costs = NULL")
    other = plausibility.amounts_on_usual_scale(con, 2008, BOUNDS)
    assert other.passed and other.metadata["measures_in_no_other_year"] == ["wage_costs"]


def test_ceiling_check_fails_when_most_returns_are_above_it_in_every_year():
    """A ceiling typed in thousands (7,500): every return of every year is above it. The years
    agree with each other, so only the absolute bound of the specification catches it."""
    thousands = {y: 7_500.0 for y in range(2007, 2013)}
    con = _world()
    for y in range(2007, 2012):
        res = plausibility.turnover_above_ceiling(con, y, thousands, BOUNDS)
        assert not res.passed, res.description
        assert res.metadata["share_above_ceiling"] == 1.0
        assert res.metadata["max_share_above_ceiling"] == 0.05 and "5.0%" in res.description
    # also with one year only (nothing to compare with)
    alone = _world(years=[2008])
    assert not plausibility.turnover_above_ceiling(alone, 2008, thousands, BOUNDS).passed
    # the right ceiling: a few returns above it, well within the bound
    assert plausibility.turnover_above_ceiling(con, 2008, CEILINGS, BOUNDS).passed


def test_the_ceiling_bound_leaves_the_synthetic_demo_a_wide_margin(tmp_path):
    """The generator's returns above the ceiling (crossers, 1.2% of firms over the years) stay far
    below the default bound, in every year: the demo's check passes with margin."""
    import polars as pl

    from offshoring.synth import generate

    spec = load_study_spec()
    raw = tmp_path / "raw"
    generate(raw, firms=900, seed=5, years=range(2005, 2013))
    files = sorted((raw / "survey").glob("survey_*.csv"))
    assert len(files) == 8
    for path in files:
        year = int(path.stem.split("_")[-1])
        frame = pl.read_csv(path, separator=";", infer_schema=False, encoding="utf8-lossy")
        turnover = frame["turnover"].str.replace(",", ".", literal=True).cast(pl.Float64)
        share = float((turnover > spec.thresholds.ceiling(year)).mean())
        assert share <= spec.thresholds.plausibility.max_share_above_ceiling / 5, (year, share)


def test_row_count_check_reads_its_ratio_and_shows_it():
    """The bound is an argument (the asset passes delivery_gate.min_share_of_neighbours), in the
    description and the metadata; the first year says it was not checked."""
    from offshoring import validation as v

    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    cols = ", ".join(f"{n} {t}" for n, t in v.RAW_TABLES["survey_returns"])
    con.execute(f"CREATE TABLE raw.survey_returns ({cols})")
    con.execute("INSERT INTO raw.survey_returns (firm_id, year) SELECT 'a' || i, 2010 FROM range(1000) t(i)")
    con.execute("INSERT INTO raw.survey_returns (firm_id, year) SELECT 'b' || i, 2011 FROM range(550) t(i)")
    strict = v.table_checks(con, "survey_returns", year=2011, row_count_ratio=0.9)["row_count_vs_previous"]
    assert not strict.passed
    assert strict.metadata["min_ratio"] == 0.9 and strict.metadata["ratio"] == 0.55
    assert strict.metadata["previous_year"] == 2010 and "90%" in strict.description and "55%" in strict.description
    assert v.row_count_check(con, 2011, ratio=0.5).passed
    first = v.row_count_check(con, 2010, ratio=0.9)
    assert first.passed and first.description.startswith("NOT checked") and first.metadata["checked"] is False
