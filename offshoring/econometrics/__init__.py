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

The model specifications (`DynamicSpec`, `CoxSpec` and their readers) are plain data in
`model_specs`. The names below are imported on first use, so that reading a specification
(``offshoring.econometrics.model_specs``) does not import numpy, pandas or scipy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from offshoring._lazy import lazy_exports

if TYPE_CHECKING:
    from .cox import CoxPH, CoxResults, build_cox_sample, fit_cox_table3
    from .dynamic import DynamicSample, build_dynamic_sample, fit_dynamic_probit
    from .errors import (
        CollinearityError,
        ConvergenceError,
        EmptySampleError,
        EstimationError,
        PerfectPredictionError,
        SingletonGroupsError,
    )
    from .grouped_ph import GroupedPH, GroupedPHResults, fit_grouped_ph_table3, region_spell_risk_rows
    from .model_specs import CoxSpec, DynamicSpec, load_cox_spec, load_dynamic_spec
    from .partial_effects import average_partial_effects, marginal_probability
    from .re_probit import RandomEffectsProbit, RandomEffectsProbitResults, pooled_binary_fit

#: exported name -> the submodule defining it
_EXPORTS = {
    "CollinearityError": "errors",
    "ConvergenceError": "errors",
    "CoxPH": "cox",
    "CoxResults": "cox",
    "CoxSpec": "model_specs",
    "DynamicSample": "dynamic",
    "DynamicSpec": "model_specs",
    "EmptySampleError": "errors",
    "EstimationError": "errors",
    "GroupedPH": "grouped_ph",
    "GroupedPHResults": "grouped_ph",
    "PerfectPredictionError": "errors",
    "RandomEffectsProbit": "re_probit",
    "RandomEffectsProbitResults": "re_probit",
    "SingletonGroupsError": "errors",
    "average_partial_effects": "partial_effects",
    "build_cox_sample": "cox",
    "build_dynamic_sample": "dynamic",
    "fit_cox_table3": "cox",
    "fit_dynamic_probit": "dynamic",
    "fit_grouped_ph_table3": "grouped_ph",
    "load_cox_spec": "model_specs",
    "load_dynamic_spec": "model_specs",
    "marginal_probability": "partial_effects",
    "pooled_binary_fit": "re_probit",
    "region_spell_risk_rows": "grouped_ph",
}

__all__ = [
    "CollinearityError",
    "ConvergenceError",
    "CoxPH",
    "CoxResults",
    "CoxSpec",
    "DynamicSample",
    "DynamicSpec",
    "EmptySampleError",
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
]  # the names of _EXPORTS


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
