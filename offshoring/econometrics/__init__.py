"""Estimators of the study: dynamic random-effects probit and Cox model.

No Dagster here: a model is built from data and ``fit()`` returns a results
object with ``params``, ``bse``, ``llf`` and ``summary()``, as in statsmodels.

* `RandomEffectsProbit` -- random-intercept probit/logit by adaptive quadrature
  (Table 2), with `build_dynamic_sample` / `fit_dynamic_probit` turning the
  firm-year panel and ``config/probit_table2.yaml`` into the estimation sample.
* `CoxPH` -- Cox model on (start, stop] rows with Efron ties and firm-clustered
  errors (Table 3), with `build_cox_sample` / `fit_cox_table3` for the spell-year
  table and ``config/cox_table3.yaml``.
* `GroupedPH` -- the grouped-time proportional hazard (complementary log-log on
  spell-years, one intercept per spell-year), exact for annual data, with
  firm-clustered errors; `fit_grouped_ph_table3` fits the Table 3 spec in that form
  and `region_spell_risk_rows` keeps the spell-years the region-spell hazard decides.
"""

from .cox import CoxPH, CoxResults, CoxSpec, build_cox_sample, fit_cox_table3, load_cox_spec
from .dynamic import DynamicSample, DynamicSpec, build_dynamic_sample, fit_dynamic_probit, load_dynamic_spec
from .errors import (
    CollinearityError,
    ConvergenceError,
    EstimationError,
    PerfectPredictionError,
    SingletonGroupsError,
)
from .grouped_ph import GroupedPH, GroupedPHResults, fit_grouped_ph_table3, region_spell_risk_rows
from .partial_effects import average_partial_effects, marginal_probability
from .re_probit import RandomEffectsProbit, RandomEffectsProbitResults, pooled_binary_fit

__all__ = [
    "CollinearityError",
    "ConvergenceError",
    "CoxPH",
    "CoxResults",
    "CoxSpec",
    "DynamicSample",
    "DynamicSpec",
    "EstimationError",
    "GroupedPH",
    "GroupedPHResults",
    "PerfectPredictionError",
    "RandomEffectsProbit",
    "RandomEffectsProbitResults",
    "SingletonGroupsError",
    "average_partial_effects",
    "build_cox_sample",
    "build_dynamic_sample",
    "fit_cox_table3",
    "fit_dynamic_probit",
    "fit_grouped_ph_table3",
    "load_cox_spec",
    "load_dynamic_spec",
    "marginal_probability",
    "pooled_binary_fit",
    "region_spell_risk_rows",
]
