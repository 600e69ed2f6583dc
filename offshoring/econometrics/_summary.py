"""A results summary made of DataFrames, printable as text like statsmodels'."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats


def coefficient_table(
    params: pd.Series, bse: pd.Series, alpha: float = 0.05, exp: bool = False
) -> pd.DataFrame:
    """Coefficient, standard error, z, p-value and confidence interval per parameter.

    With ``exp=True`` (hazard ratios, odds ratios) an ``exp(coef)`` column is
    added and the interval is reported on the exponentiated scale.
    """
    z = params / bse
    p = 2.0 * stats.norm.sf(np.abs(z))
    lo, hi = wald_interval(params, bse, alpha)
    pct = f"{100 * (1 - alpha):g}%"
    table = pd.DataFrame({"coef": params, "std err": bse, "z": z, "P>|z|": p})
    if exp:
        table.insert(1, "exp(coef)", np.exp(params))
        table[f"exp(coef) lower {pct}"] = np.exp(lo)
        table[f"exp(coef) upper {pct}"] = np.exp(hi)
    else:
        table[f"lower {pct}"] = lo
        table[f"upper {pct}"] = hi
    return table


@dataclass
class ResultsSummary:
    """Summary of a fit: a header of (label, value) pairs and one or more tables.

    ``tables`` holds DataFrames (the header first, as a two-column frame), so a
    report can take them as they are; ``str()`` and ``as_text()`` lay them out
    as plain text, ``_repr_html_`` for notebooks.
    """

    title: str
    info: list[tuple[str, object]]
    table: pd.DataFrame
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def tables(self) -> list[pd.DataFrame]:
        header = pd.DataFrame(self.info, columns=["item", "value"])
        return [header, self.table, *self.extra.values()]

    def as_text(self) -> str:
        width = 78
        lines = [self.title.center(width), "=" * width]
        half = (len(self.info) + 1) // 2
        left, right = self.info[:half], self.info[half:]
        for i in range(half):
            a = _fmt_pair(left[i])
            b = _fmt_pair(right[i]) if i < len(right) else ""
            lines.append(f"{a:<39}{b}")
        lines.append("=" * width)
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            lines.append(self.table.to_string(float_format=_fmt_float))
            for name, extra in self.extra.items():
                lines += ["-" * width, name, extra.to_string(float_format=_fmt_float)]
        lines.append("=" * width)
        lines += self.notes
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        parts = [f"<h4>{self.title}</h4>", self.tables[0].to_html(index=False)]
        parts += [t.to_html(float_format=_fmt_float) for t in self.tables[1:]]
        parts += [f"<p>{n}</p>" for n in self.notes]
        return "\n".join(parts)


def _fmt_pair(pair: tuple[str, object]) -> str:
    label, value = pair
    if isinstance(value, float):
        value = _fmt_float(value)
    return f"{label + ':':<20}{value!s:>17}"


def _fmt_float(x: float) -> str:
    if not np.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
        return f"{x:.4e}"
    return f"{x:.6f}"


def wald_interval(params, bse, alpha: float = 0.05):
    """(lower, upper) of the normal-approximation interval: the one place it is computed."""
    q = stats.norm.ppf(1 - alpha / 2)
    return params - q * bse, params + q * bse


def covers(estimate: float, se: float, value: float, alpha: float = 0.05) -> bool:
    """Whether the interval of `estimate` covers `value`."""
    lo, hi = wald_interval(estimate, se, alpha)
    return bool(lo <= value <= hi)


def wald_conf_int(params: pd.Series, bse: pd.Series, alpha: float = 0.05) -> pd.DataFrame:
    """Normal-approximation interval (columns 0 and 1, as statsmodels)."""
    lo, hi = wald_interval(params, bse, alpha)
    return pd.DataFrame({0: lo, 1: hi})


class WaldResultsMixin:
    """The statsmodels-style accessors of a fit with a covariance matrix: `params`, `bse`
    (of the chosen covariance), `bse_oim`, `bse_cluster`, `cov_params()`, `tvalues`,
    `pvalues`, `conf_int()`. Needs `names`, `params_array`, `_cov`, `cov_oim`, `cov_cluster`."""

    @property
    def params(self) -> pd.Series:
        return pd.Series(self.params_array, index=self.names, name="coef")

    @property
    def bse(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._cov)), index=self.names, name="std err")

    @property
    def bse_oim(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov_oim)), index=self.names)

    @property
    def bse_cluster(self) -> pd.Series | None:
        if self.cov_cluster is None:
            return None
        return pd.Series(np.sqrt(np.diag(self.cov_cluster)), index=self.names)

    def cov_params(self) -> pd.DataFrame:
        return pd.DataFrame(self._cov, index=self.names, columns=self.names)

    @property
    def tvalues(self) -> pd.Series:
        return self.params / self.bse

    @property
    def pvalues(self) -> pd.Series:
        return pd.Series(2 * stats.norm.sf(np.abs(self.tvalues)), index=self.names)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald interval of every parameter (columns 0 and 1, as statsmodels)."""
        return wald_conf_int(self.params, self.bse, alpha)
