"""Plausibility of a loaded survey delivery, judged against the other deliveries.

A check whose rule flags the top 0.1% of each delivery fires on every delivery by
construction, and an alert that fires every year is one users learn to ignore. These
checks compare a delivery with the other years in the warehouse, so a clean delivery
passes and an anomaly stands out:

* ``amounts_on_usual_scale``: the median of each amount (turnover, employees, value
  added, wage costs, value added per employee) within a factor of the median of the
  other years' medians (a file in thousands of EUR instead of EUR is off by 1,000; a
  crisis year moves a median by a fraction; one odd year moves the median of the
  others little). A measure the other years have and this year lacks (no positive
  value: all empty, or all 0) fails, named;
* ``turnover_above_ceiling``: returns above the survey's turnover ceiling are normal
  in small numbers (firms growing past it during the year) and are reported as
  metadata; the check warns when their share exceeds an absolute bound (the survey
  covers the firms below the ceiling: a ceiling in the wrong unit puts every return
  above it, in every year alike) or departs from the other years'.

The asset evaluates these once every year of a run is written, so each year is compared
with all the others. With no other year in the warehouse there is nothing to compare
with: the comparison is not made, and the result says so (``checked: false`` in the
metadata, "NOT checked" in the description); it passes only because a Dagster check has
no "skipped" result. Only aggregates leave this module (counts, shares, medians of a
year), never a firm's value.
"""

from __future__ import annotations

from statistics import median
from typing import Any

from offshoring.spec import PlausibilitySpec
from offshoring.validation import CheckResult

#: the amounts whose medians are compared (SQL expressions over raw.survey_returns)
SCALE_MEASURES = {
    "turnover": "turnover",
    "employees": "employees",
    "value_added": "value_added",
    "wage_costs": "wage_costs",
    "value_added_per_employee": "CASE WHEN employees > 0 THEN value_added / employees END",
}


def _medians(con: Any) -> dict[int, dict[str, float | None]]:
    cols = ", ".join(f"median(CASE WHEN ({expr}) > 0 THEN ({expr}) END) AS {name}"
                     for name, expr in SCALE_MEASURES.items())
    rows = con.execute(f"SELECT year, {cols} FROM raw.survey_returns GROUP BY year").fetchall()
    names = list(SCALE_MEASURES)
    return {int(r[0]): dict(zip(names, r[1:])) for r in rows}


def amounts_on_usual_scale(con: Any, year: int, bounds: PlausibilitySpec) -> CheckResult:
    by_year = _medians(con)
    this = by_year.get(int(year), {})
    others = {y: m for y, m in by_year.items() if y != int(year)}
    if not others:
        return CheckResult(True, f"NOT checked: {year} is the only survey year in the warehouse, no other "
                                 f"year to compare its amounts with", {"checked": False, "compared_with_years": []})
    off, absent, not_compared = [], [], []
    meta: dict[str, Any] = {"checked": True, "compared_with_years": sorted(others),
                            "max_factor": bounds.max_median_factor}
    for name in SCALE_MEASURES:
        ref_values = [m[name] for m in others.values() if m.get(name)]
        value = this.get(name)
        if not ref_values:  # no other year has it either: nothing to compare with
            not_compared.append(name)
            continue
        ref = median(ref_values)
        meta[f"{name}_median_other_years"] = round(float(ref), 2)
        if not value:  # the others have it, this year has no positive value
            absent.append(name)
            continue
        factor = value / ref
        meta[f"{name}_median"] = round(float(value), 2)
        if not (1 / bounds.max_median_factor <= factor <= bounds.max_median_factor):
            off.append(f"{name} (median {factor:.3g} times the other years')")
    if absent:
        meta["measures_missing"] = absent
    if not_compared:
        meta["measures_in_no_other_year"] = not_compared
    problems = []
    if off:
        problems.append("amounts off the other years' scale: " + "; ".join(off)
                        + ". Check the unit of the delivery (EUR, not thousands) and the column map's scale")
    if absent:
        problems.append(f"no positive value of {', '.join(absent)}, which the other years have: check the "
                        f"delivery's columns and the column map")
    if problems:
        return CheckResult(False, f"{year}: " + ". ".join(problems) + ".", meta)
    tail = (f" ({', '.join(not_compared)}: in no year, not compared)" if not_compared else "")
    return CheckResult(True, f"{year}: every median within a factor {bounds.max_median_factor:g} of the other "
                        f"years'{tail}", meta)


def turnover_above_ceiling(con: Any, year: int, ceilings: dict[int, float], bounds: PlausibilitySpec) -> CheckResult:
    rows = con.execute("SELECT year, count(*), count(*) FILTER (WHERE turnover > c.ceiling) "
                       "FROM raw.survey_returns JOIN (SELECT unnest(?) AS year, unnest(?) AS ceiling) c "
                       "USING (year) GROUP BY year",
                       [list(ceilings), [float(v) for v in ceilings.values()]]).fetchall()
    share = {int(y): (above / n if n else 0.0) for y, n, above in rows}
    counts = {int(y): int(above) for y, _, above in rows}
    this = share.get(int(year), 0.0)
    n_above = counts.get(int(year), 0)
    others = {y: s for y, s in share.items() if y != int(year)}
    meta = {"returns_above_ceiling": n_above, "share_above_ceiling": round(this, 4),
            "ceiling": float(ceilings.get(int(year), 0.0)),
            "max_share_above_ceiling": bounds.max_share_above_ceiling,
            "checked": True, "compared_with_other_years": bool(others),
            "share_other_years": {str(y): round(s, 4) for y, s in sorted(others.items())}}
    if this > bounds.max_share_above_ceiling:
        return CheckResult(False, f"{this:.1%} of the {year} returns are above the survey's turnover ceiling of "
                             f"{meta['ceiling']:,.0f}, above the bound of {bounds.max_share_above_ceiling:.1%} "
                             f"(plausibility.max_share_above_ceiling: the survey covers the firms below the "
                             f"ceiling): is the ceiling of {year} in EUR (thresholds.yaml turnover_ceiling) and "
                             f"the turnover in EUR?", meta)
    if not others:
        return CheckResult(True, f"{n_above} returns above the ceiling ({this:.1%}, within the bound of "
                            f"{bounds.max_share_above_ceiling:.1%}); NOT compared with other years: {year} is the "
                            f"only survey year in the warehouse", meta)
    limit = max(others.values()) + bounds.ceiling_share_margin
    if this > limit:
        return CheckResult(False, f"{this:.1%} of the {year} returns are above the survey's turnover ceiling, "
                             f"against at most {max(others.values()):.1%} in the other years: is the ceiling "
                             f"of {year} right (thresholds.yaml) and the turnover in EUR?", meta)
    return CheckResult(True, f"{n_above} returns above the ceiling ({this:.1%}; other years up to "
                        f"{max(others.values()):.1%}; bound {bounds.max_share_above_ceiling:.1%})", meta)
