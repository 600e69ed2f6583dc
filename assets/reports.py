"""Reports layer: Tables 1-3 and Figures 1-2 under reports/, disclosure-safe, with provenance."""


from pathlib import Path
from typing import Any

import dagster as dg

from offshoring import settings as app_settings
from offshoring.fitstore import read_fit
from offshoring.reports import figures, html, provenance, render, tables
from offshoring.reports.sdc import DisclosureError
from offshoring.settings import load_config
from offshoring.truth import read_truth
from orchestration.resources import WRITER_POOL, Folders, Warehouse

GROUP = "reports"
EAGER = dg.AutomationCondition.eager()


_PROVENANCE_CACHE: dict[tuple, dict[str, Any]] = {}


def _provenance(context: dg.AssetExecutionContext, folders: Folders) -> dict[str, Any]:
    """The run's provenance record, computed once per run and raw-folder state: the
    report assets of one run share it instead of hashing every input file again."""
    files = sorted(p for p in folders.raw.rglob("*") if p.is_file())
    key = (context.run_id, str(folders.raw),
           tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key not in _PROVENANCE_CACHE:
        _PROVENANCE_CACHE.clear()
        _PROVENANCE_CACHE[key] = _collect_provenance(context, folders)
    return _PROVENANCE_CACHE[key]


def _collect_provenance(context: dg.AssetExecutionContext, folders: Folders) -> dict[str, Any]:
    truth, _ = read_truth(folders.raw) if folders.synthetic else (None, None)
    cfg = {
        "paths": app_settings.Settings().as_dict() | {"raw_dir": str(folders.raw),
                                                       "reports_dir": str(folders.reports)},
        "reports": load_config("reports.yaml"),
        "thresholds": load_config("thresholds.yaml"),
        "panel": load_config("panel.yaml"),
    }
    return provenance.collect([folders.raw], cfg, truth.get("seed") if truth else None, context.run_id)


def _result(record: render.OutputRecord, reports_dir: Path, **extra: Any) -> dg.MaterializeResult:
    meta = {k: (dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v)
            for k, v in record.metadata(reports_dir).items()}
    return dg.MaterializeResult(metadata={**meta, **extra})


def _disclosure_check(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec("disclosure_safe", asset=asset, blocking=True,
                             description="no published cell rests on fewer than the minimum "
                                         "number of firms or is dominated by one firm")


def _write_table(context, folders: Folders, table, order: int):
    """Refuses (raises) before writing anything if a cell is unsafe."""
    try:
        record = render.write_table(table, folders.reports, _provenance(context, folders), order=order)
    except DisclosureError as exc:
        raise dg.Failure(description=f"unsafe cell, nothing written: {exc}") from exc
    return record


@dg.asset(group_name=GROUP, kinds={"duckdb", "markdown"}, automation_condition=EAGER, pool=WRITER_POOL,
          deps=["firm_years", "aida_offshoring", "outsourcing_spells"],
          check_specs=[_disclosure_check("table1")],
          description="Table 1: characteristics of firms in offshore outsourcing and offshoring, "
                      "averages 2007-2012, by sector.")
def table1(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    with warehouse.connect(read_only=True) as con:
        t = tables.table1(con)
    record = _write_table(context, folders, t, order=10)
    yield _result(record, folders.reports, table=dg.MetadataValue.md(render.to_markdown(t)))
    yield dg.AssetCheckResult(check_name="disclosure_safe", passed=True)


def _figure_asset(name: str, builder, order: int, description: str, deps: list[str]):
    @dg.asset(name=name, group_name=GROUP, kinds={"duckdb", "matplotlib"},
              automation_condition=EAGER, deps=deps, check_specs=[_disclosure_check(name)],
              pool=WRITER_POOL,
              description=description)
    def _figure(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
        with warehouse.connect(read_only=True) as con:
            out = builder(con)
        try:
            record = figures.write_figure(out, folders.reports, _provenance(context, folders),
                                          order=order)
        except DisclosureError as exc:
            raise dg.Failure(description=f"unsafe cell, nothing written: {exc}") from exc
        yield _result(record, folders.reports)
        yield dg.AssetCheckResult(check_name="disclosure_safe", passed=True)

    return _figure


figure1 = _figure_asset("figure1", figures.figure1, 20,
                        "Figure 1: destination regions of offshore outsourcing and offshoring by "
                        "sector (default 2008).",
                        ["firm_years", "aida_offshoring"])
figure2 = _figure_asset("figure2", figures.figure2, 30,
                        "Figure 2: map of Italian provinces with the firms of each type and sector "
                        "(default 2008).",
                        ["firm_years", "aida_offshoring"])


def _model_asset(name: str, model: str, spec_fn, order: int, description: str):
    @dg.asset(name=name, group_name=GROUP, kinds={"duckdb", "markdown"},
              automation_condition=EAGER, deps=[model], check_specs=[_disclosure_check(name)],
              pool=WRITER_POOL,
              description=description)
    def _table(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
        with warehouse.connect(read_only=True) as con:
            fit = read_fit(con, model)
        spec = spec_fn()
        main = tables.model_table(fit, spec)
        comparison = tables.comparison_table(fit, spec, truth=fit.truth or None)
        record = _write_table(context, folders, main, order=order)
        _write_table(context, folders, comparison, order=order + 1)
        yield _result(record, folders.reports,
                      table=dg.MetadataValue.md(render.to_markdown(main)),
                      comparison=dg.MetadataValue.md(render.to_markdown(comparison)))
        yield dg.AssetCheckResult(check_name="disclosure_safe", passed=True)

    return _table


table2 = _model_asset("table2", "outsourcing_probit", tables.table2_spec, 40,
                      "Table 2: dynamic random-effects probit of offshore outsourcing, in the "
                      "paper's layout, with the comparison to the published estimates.")
table3 = _model_asset("table3", "backshoring_cox", tables.table3_spec, 50,
                      "Table 3: Cox model of backshoring (hazard ratios), in the paper's layout, "
                      "with the comparison to the published estimates.")


@dg.asset(group_name=GROUP, kinds={"html"}, automation_condition=EAGER,
          deps=["table1", "figure1", "figure2", "table2", "table3"],
          description="reports/index.html: every table and figure with its provenance, offline.")
def report_index(context: dg.AssetExecutionContext, folders: Folders):
    path = html.write_index(folders.reports, None, _provenance(context, folders))
    return dg.MaterializeResult(metadata={"path": str(path),
                                          "outputs": len(render.read_records(folders.reports))})
