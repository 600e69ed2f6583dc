"""Plausibility checks fire on the anomaly they exist for and stay silent on clean deliveries."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from offshoring import plausibility
from offshoring.spec import PlausibilitySpec, load_study_spec

BOUNDS = PlausibilitySpec(max_median_factor=3, ceiling_share_margin=0.02)
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


def test_first_delivery_has_nothing_to_compare_with():
    con = _world(years=[2008])
    assert plausibility.amounts_on_usual_scale(con, 2008, BOUNDS).passed
    res = plausibility.turnover_above_ceiling(con, 2008, CEILINGS, BOUNDS)
    assert res.passed and "no other year" in res.description
    assert res.metadata["returns_above_ceiling"] == 4


def test_ceiling_crossers_are_metadata_and_warn_only_when_their_share_jumps():
    con = _world(above={2010: 0.08})
    quiet = plausibility.turnover_above_ceiling(con, 2009, CEILINGS, BOUNDS)
    assert quiet.passed and quiet.metadata["returns_above_ceiling"] == 4
    assert quiet.metadata["share_above_ceiling"] == pytest.approx(0.01)
    loud = plausibility.turnover_above_ceiling(con, 2010, CEILINGS, BOUNDS)
    assert not loud.passed and "8.0%" in loud.description
    assert loud.metadata["returns_above_ceiling"] == 32
