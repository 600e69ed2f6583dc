"""How a model was estimated, in words: standard errors, quadrature, ties, ceilings, years.

The notes of Tables 2 and 3 (and of their robustness tables) and the descriptions of the
specification variants say which settings a fit was made with. Nothing here holds a
setting: every function reads what it is given, the settings a fit recorded in
``models.fit_stats`` (`fit_settings`) or, where the fit recorded none, the specification it
was made under.
"""

from __future__ import annotations

from typing import Any, Mapping

#: the settings a fit records (``models.fit_stats``) that its table's notes describe
SETTING_KEYS = ("link", "cov_type", "quad_points", "adaptive", "ties", "cluster_correction")

_SE = {
    "cluster": "clustered by firm",
    "robust": "clustered by firm",
    "oim": "observed information (OIM)",
    "nonrobust": "observed information (OIM)",
    "hessian": "observed information (OIM)",
    "opg": "outer product of the gradients (OPG)",
    "eim": "expected information (EIM)",
}
_TIES = {"efron": "Efron", "breslow": "Breslow"}


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("1", "1.0", "true", "yes")
    try:
        return bool(float(value))
    except (TypeError, ValueError):
        return None


def se_text(cov_type: Any, cluster_correction: Any = None) -> str:
    """"clustered by firm", "observed information (OIM)", ... (the name when unknown)."""
    key = str(cov_type).strip().lower()
    text = _SE.get(key, key)
    if _SE.get(key) == _SE["cluster"] and _flag(cluster_correction) is not None:
        text += ", with" if _flag(cluster_correction) else ", without"
        text += " the G/(G-1) small-sample factor"
    return text


def quadrature_text(points: Any, adaptive: Any) -> str:
    """"12-point adaptive Gauss-Hermite quadrature" (or "ordinary")."""
    kind = {True: "adaptive (mean-variance)", False: "ordinary (non-adaptive)"}.get(_flag(adaptive), "")
    n = int(float(points)) if points is not None else None
    head = f"{n}-point " if n is not None else ""
    return f"{head}{kind + ' ' if kind else ''}Gauss-Hermite quadrature"


def ties_text(ties: Any) -> str:
    """"Efron's approximation for tied event times" (Breslow's, ...)."""
    name = _TIES.get(str(ties).strip().lower(), str(ties))
    return f"{name}'s approximation for tied event times"


def ceilings_text(thresholds: Any) -> str:
    """The survey's turnover ceilings in words: "7.5 million EUR (5.16 million EUR in 2005-2006)"."""
    tc = thresholds.turnover_ceiling
    default = float(tc.default)
    other: dict[float, list[int]] = {}
    for year, value in sorted((int(y), float(v)) for y, v in tc.by_year.items()):
        if value != default:
            other.setdefault(value, []).append(year)
    text = _million(default)
    if other:
        parts = [f"{_million(v)} in {_years(ys)}" for v, ys in other.items()]
        text += " (" + "; ".join(parts) + ")"
    return text


def _million(v: float) -> str:
    m = v / 1e6
    return f"{m:.2f}".rstrip("0").rstrip(".") + " million EUR"


def _years(ys: list[int]) -> str:
    ys = sorted(ys)
    runs, start = [], ys[0]
    for a, b in zip(ys, ys[1:] + [None]):
        if b != a + 1:
            runs.append(str(start) if start == a else f"{start}-{a}")
            start = b
    return ", ".join(runs)


def years_text(first: Any, last: Any) -> str:
    """"2006 to the latest year loaded", "2007-2012"."""
    if last is None:
        return f"{int(first)} to the latest year loaded"
    return str(int(first)) if int(first) == int(last) else f"{int(first)}-{int(last)}"


def fit_settings(fit: Any, model_spec: Any = None, estimator: str | None = None) -> dict[str, Any]:
    """The estimation settings of a fit: those it recorded in its statistics, else those of
    `model_spec` (the specification it was made under). Only the settings that apply to
    `estimator` (``probit``, ``cox``, ``grouped_ph``) are returned."""
    stats = getattr(fit, "stats", None) or {}
    keys = {"probit": ("link", "cov_type", "quad_points", "adaptive"),
            "cox": ("cov_type", "ties", "cluster_correction"),
            "grouped_ph": ("cov_type", "cluster_correction")}.get(estimator or "", SETTING_KEYS)
    out: dict[str, Any] = {}
    for k in keys:
        v = stats.get(k) if isinstance(stats, Mapping) else None
        if v is None and model_spec is not None:
            v = getattr(model_spec, k, None)
        if v is not None:
            out[k] = v
    if estimator == "grouped_ph" and "cluster_correction" not in (stats or {}):
        # the grouped-time fit's own default (offshoring.econometrics.grouped_ph.GroupedPH.fit)
        out["cluster_correction"] = True
    return out


def settings_note(settings: Mapping[str, Any], estimator: str) -> str:
    """One sentence of a table's notes: which standard errors, quadrature and ties."""
    parts = []
    if "cov_type" in settings:
        parts.append("standard errors " + se_text(settings["cov_type"], settings.get("cluster_correction")))
    if estimator == "probit" and "quad_points" in settings:
        parts.append("likelihood integrated by " + quadrature_text(settings["quad_points"],
                                                                    settings.get("adaptive")))
    if estimator == "cox" and "ties" in settings:
        parts.append(ties_text(settings["ties"]))
    if estimator == "grouped_ph":
        parts.append("no approximation for ties (the grouped-time likelihood is exact for annual ends)")
    if not parts:
        return ""
    text = "; ".join(parts)
    return "Estimation: " + text + "."


def column_settings_text(settings: Mapping[str, Any], estimator: str) -> str:
    """The settings of one robustness column, short: "clustered by firm; 12-point adaptive ..."."""
    parts = []
    if "cov_type" in settings:
        parts.append(se_text(settings["cov_type"], settings.get("cluster_correction")) + " s.e.")
    if estimator == "probit" and "quad_points" in settings:
        parts.append(quadrature_text(settings["quad_points"], settings.get("adaptive")))
    if estimator == "cox" and "ties" in settings:
        parts.append(f"{_TIES.get(str(settings['ties']).lower(), settings['ties'])} ties")
    if estimator == "grouped_ph":
        parts.append("exact grouped-time likelihood")
    return "; ".join(parts)
