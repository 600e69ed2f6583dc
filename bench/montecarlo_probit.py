"""Monte Carlo of the estimators at the paper's size: bias, RMSE and 95% coverage.

Not part of the test run (a replication of the probit at 17,338 firms takes a
few seconds). Each replication simulates a firm-year panel from the dynamic
random-effects probit (offshoring.econometrics.simulate, true parameters keyed
by the Table 2 column names), builds the default estimation sample and fits
it with the default options (adaptive 12-point quadrature, firm-clustered
errors). ``--model cox`` does the same for the Cox model of Table 3 on
simulated spell-years (annual ties, time-varying covariates, several spells
per firm), ``--model both`` runs both.

    .venv/bin/python bench/montecarlo_probit.py --reps 100            # probit, paper size
    .venv/bin/python bench/montecarlo_probit.py --model cox --reps 200
    .venv/bin/python bench/montecarlo_probit.py --reps 20 --firms 3000 --csv mc.csv

Output per parameter: truth, mean estimate, bias, bias in standard errors,
RMSE, standard deviation of the estimates, mean standard error, and coverage of
the 95% interval (with its Monte Carlo standard error).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from offshoring.econometrics import build_dynamic_sample, fit_cox_table3  # noqa: E402
from offshoring.econometrics.errors import EstimationError  # noqa: E402
from offshoring.econometrics.simulate import simulate_firm_years, simulate_spell_years  # noqa: E402


def one_probit(firms: int, seed: int):
    panel, truth = simulate_firm_years(n_firms=firms, seed=seed)
    res = build_dynamic_sample(panel).fit()
    return res.params, res.bse, pd.Series(truth)


def one_cox(firms: int, seed: int):
    frame, truth = simulate_spell_years(n_firms=firms, seed=seed)
    res = fit_cox_table3(frame)
    return res.params, res.bse, pd.Series(truth)


def run(model: str, reps: int, firms: int, seed: int, level: float = 0.95) -> pd.DataFrame:
    fn = one_probit if model == "probit" else one_cox
    est, se = [], []
    truth = None
    failures = 0
    t0 = time.perf_counter()
    for r in range(reps):
        try:
            p, b, truth = fn(firms, seed + r)
        except EstimationError as exc:  # counted, not hidden
            failures += 1
            print(f"  replication {r}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        est.append(p)
        se.append(b)
        if (r + 1) % max(1, reps // 10) == 0:
            print(f"  {model}: {r + 1}/{reps} replications, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    E = pd.DataFrame(est).reset_index(drop=True)
    S = pd.DataFrame(se).reset_index(drop=True)
    truth = truth[E.columns]
    from scipy.stats import norm

    q = norm.ppf(0.5 + level / 2)
    cover = ((E - q * S).le(truth) & (E + q * S).ge(truth)).mean()
    n = len(E)
    table = pd.DataFrame(
        {
            "truth": truth,
            "mean": E.mean(),
            "bias": E.mean() - truth,
            "bias/se": (E.mean() - truth) / S.mean(),
            "rmse": np.sqrt(((E - truth) ** 2).mean()),
            "sd": E.std(ddof=1),
            "mean_se": S.mean(),
            f"cover{int(level * 100)}": cover,
            "cover_mcse": np.sqrt(cover * (1 - cover) / n),
        }
    )
    table.attrs.update(model=model, reps=n, failures=failures, firms=firms, seconds=time.perf_counter() - t0)
    return table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["probit", "cox", "both"], default="probit")
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--firms", type=int, default=None,
                    help="firms per replication (default: probit 17,338 as Table 2; Cox 3,000)")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (0 = library default)")
    ap.add_argument("--csv", type=Path, help="write the table(s) here (suffixed by model)")
    args = ap.parse_args(argv)
    if args.threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    models = ["probit", "cox"] if args.model == "both" else [args.model]
    out = {}
    for model in models:
        firms = args.firms or (17338 if model == "probit" else 3000)
        table = run(model, args.reps, firms, args.seed)
        a = table.attrs
        print(f"\n{model}: {a['reps']} replications ({a['failures']} failed) of {firms:,} firms, "
              f"{a['seconds']:.0f} s")
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(table.to_string(float_format=lambda x: f"{x:.4f}"))
        cov = table.filter(like="cover9").iloc[:, 0]
        print(f"coverage: mean {cov.mean():.3f}, min {cov.min():.3f} ({cov.idxmin()}); "
              f"largest |bias|/se {table['bias/se'].abs().max():.3f} ({table['bias/se'].abs().idxmax()})")
        if args.csv:
            table.to_csv(args.csv.with_name(f"{args.csv.stem}_{model}{args.csv.suffix or '.csv'}"))
        out[model] = table
    return out


if __name__ == "__main__":
    main()
