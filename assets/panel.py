"""Panel layer: the deduplicated firm-year panel, AIDA offshoring, spells."""


import dagster as dg
import duckdb

from assets._common import markdown_table, table_metadata, with_origin
from offshoring import panel
from assets.resources import WRITER_POOL, Folders, Study, Warehouse
from offshoring.readers.layout import removed_delivery_sentence, years_no_longer_delivered
from offshoring.settings import ENV_DB

GROUP = "panel"


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "sql"}, pool=WRITER_POOL,
    deps=["survey_returns", "aida_firm_years", "municipality_xwalk", "llma_districts"],
    check_specs=[
        dg.AssetCheckSpec("panel_schema_valid", asset="firm_years", blocking=True,
                          description="pandera schema of the panel: types, ranges, unique (firm_id, year)"),
        dg.AssetCheckSpec("geography_resolved", asset="firm_years", blocking=False,
                          description="every firm-year resolves to a local labour market area "
                                      "(a return without a province is refused by the schema)"),
    ],
    description="Deduplicated firm-year panel of survey SMEs (latest filing, at or below the "
                "turnover ceiling), harmonised geography, derived model variables.",
)
def firm_years(context: dg.AssetExecutionContext, warehouse: Warehouse, study: Study, folders: Folders):
    with warehouse.connect() as con:
        # a year loaded earlier whose delivery has since been taken out of the folder: refused
        # before the panel is replaced, as the command line refuses it before the run
        try:
            held = [int(y) for y, in con.execute("SELECT DISTINCT year FROM raw.survey_returns").fetchall()]
        except duckdb.CatalogException:
            held = []  # nothing loaded: the build says so
        gone = years_no_longer_delivered(held, folders.raw)
        if gone:
            raise dg.Failure(description=removed_delivery_sentence(gone, folders.raw, warehouse.database, ENV_DB))
        try:
            ceilings, validation = panel.build_firm_years(con, study.spec.thresholds)
        except panel.PanelSchemaError as exc:
            # Rolled back: the previous panel stays. The blocking check fails, so the run
            # stops before anything built from the panel, and the alert sensor sees it.
            yield with_origin(dg.MaterializeResult(metadata={
                "rolled_back": True, "reason": "the new panel broke its schema; the previous one stays"}), folders)
            yield dg.AssetCheckResult(check_name="panel_schema_valid", passed=False,
                                      description=str(exc), metadata={"rules_failed": len(exc.failures)})
            # The step fails in a sentence of its own (it used to end without the result of
            # geography_resolved, which is not evaluated on a panel not written, and to fail
            # as "DagsterStepOutputNotFoundError: ... did not return an output").
            raise dg.Failure(description="the new panel breaks its schema (check panel_schema_valid, "
                                         "below): the previous panel stays, and nothing built from it ran",
                             allow_retries=False)
        unresolved = con.execute(
            "SELECT count(*) FILTER (WHERE llma_code IS NULL), "
            "count(*) FILTER (WHERE geo_resolution <> 'exact') FROM panel.firm_years"
        ).fetchall()[0]
        meta = table_metadata(
            con, "panel.firm_years",
            ceilings={str(k): v for k, v in sorted(ceilings.items())},
            rows_by_geo_resolution=markdown_table(
                con, "SELECT geo_resolution, count(*) AS n FROM panel.firm_years GROUP BY 1 ORDER BY 1"),
            rejects=markdown_table(
                con, "SELECT year, reason, count(*) AS n FROM panel.survey_rejects GROUP BY ALL ORDER BY ALL"),
        )
    yield with_origin(dg.MaterializeResult(metadata=meta), folders)
    yield dg.AssetCheckResult(check_name="panel_schema_valid", passed=True,
                              description=validation.summary())
    yield dg.AssetCheckResult(
        check_name="geography_resolved", passed=unresolved[0] == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"no_llma": int(unresolved[0]), "not_exact_layout": int(unresolved[1])},
    )


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "sql"}, pool=WRITER_POOL,
    deps=["aida_firm_years", "aida_subsidiaries", "survey_returns", "municipalities"],
    description="AIDA firm-years above the ceiling that control at least one foreign "
                "subsidiary (share above the threshold), with subsidiaries by destination; "
                "provinces in the reference layout (an abolished Sardinian sigla placed by its "
                "municipalities, any other sigla outside the list refused).",
)
def aida_offshoring(context: dg.AssetExecutionContext, warehouse: Warehouse, study: Study, folders: Folders):
    thresholds = study.spec.thresholds
    pct = thresholds.offshoring_ownership_pct
    with warehouse.connect() as con:
        try:
            panel.build_aida_offshoring(con, thresholds)
        except panel.AidaProvinceError as exc:
            raise dg.Failure(description=str(exc)) from None
        meta = table_metadata(
            con, "panel.aida_offshoring", ownership_pct=pct,
            firms_by_year=markdown_table(
                con, "SELECT year, sector, count(*) AS firms, round(avg(n_subsidiaries), 2) AS "
                     "subsidiaries_per_firm FROM panel.aida_offshoring GROUP BY ALL ORDER BY ALL"),
        )
    return with_origin(dg.MaterializeResult(metadata=meta), folders)


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "sql"}, pool=WRITER_POOL,
    deps=["firm_years", "aida_offshoring"],
    check_specs=[dg.AssetCheckSpec("every_row_accounted", asset="dedup_report",
                                   description="every raw survey and AIDA row is kept or excluded "
                                               "with a reason")],
    description="Rows by source, year and reason of the deduplication by the turnover ceiling.",
)
def dedup_report(warehouse: Warehouse, folders: Folders):
    with warehouse.connect() as con:
        panel.build_dedup_report(con)
        meta = table_metadata(
            con, "panel.dedup_report",
            report=markdown_table(con, "SELECT source, reason, sum(n_rows) AS n_rows FROM "
                                       "panel.dedup_report GROUP BY ALL ORDER BY ALL"))
        counts = con.execute(
            "SELECT (SELECT count(*) FROM raw.survey_returns), "
            "(SELECT coalesce(sum(n_rows), 0) FROM panel.dedup_report WHERE source = 'survey'), "
            "(SELECT count(*) FROM raw.aida_firm_years), "
            "(SELECT coalesce(sum(n_rows), 0) FROM panel.dedup_report WHERE source = 'aida')").fetchall()[0]
    yield with_origin(dg.MaterializeResult(metadata=meta), folders)
    survey_raw, survey_reported, aida_raw, aida_reported = (int(x) for x in counts)
    yield dg.AssetCheckResult(
        check_name="every_row_accounted",
        passed=survey_raw == survey_reported and aida_raw == aida_reported,
        description="each raw row is in the panel or excluded with a reason",
        metadata={"survey_rows": survey_raw, "survey_rows_reported": survey_reported,
                  "aida_rows": aida_raw, "aida_rows_reported": aida_reported})


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "sql"}, pool=WRITER_POOL,
    deps=["firm_years", "province_spillovers", "aida_offshoring"],
    description="The panel with the province counts at t-1 (leave-one-out) joined to each firm-year.",
)
def model_panel(warehouse: Warehouse, study: Study, folders: Folders):
    loo = study.spec.panel.leave_one_out
    with warehouse.connect() as con:
        panel.build_model_panel(con, leave_one_out=loo)
        meta = table_metadata(con, "panel.model_panel", leave_one_out=loo)
    return with_origin(dg.MaterializeResult(metadata=meta), folders)


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "sql"}, pool=WRITER_POOL,
    deps=["firm_years"],
    description="Spells of offshore outsourcing per firm and per firm x destination region.",
)
def outsourcing_spells(warehouse: Warehouse, folders: Folders):
    with warehouse.connect() as con:
        panel.build_spells(con)
        meta = table_metadata(
            con, "panel.outsourcing_spells",
            spells=markdown_table(
                con, "SELECT destination, outcome, count(*) AS spells, round(avg(duration), 2) "
                     "AS mean_duration, sum(left_censored::INT) AS left_censored "
                     "FROM panel.outsourcing_spells GROUP BY ALL ORDER BY ALL"))
    return with_origin(dg.MaterializeResult(metadata=meta), folders)


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "sql"}, pool=WRITER_POOL,
    deps=["outsourcing_spells", "model_panel"],
    description="Spell-years in (start, stop] form with time-varying covariates for the Cox model.",
)
def spell_years(warehouse: Warehouse, folders: Folders):
    with warehouse.connect() as con:
        panel.build_spell_years(con)
        meta = table_metadata(con, "panel.spell_years")
    return with_origin(dg.MaterializeResult(metadata=meta), folders)
