"""Geography layer: code crosswalk, industrial districts, lagged province spillovers."""

from __future__ import annotations

import dagster as dg

from assets._common import markdown_table, table_metadata
from offshoring.sqlfiles import run_sql
from orchestration.resources import WRITER_POOL, Warehouse

GROUP = "geography"
EAGER = dg.AutomationCondition.eager()


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "sql"}, pool=WRITER_POOL, automation_condition=EAGER,
    deps=["municipalities", "llma_map"],
    description="Every municipality code of every ISTAT layout (103, 107, 110 provinces, "
                "current) mapped to the reference municipality, province, region and LLMA.",
)
def municipality_xwalk(warehouse: Warehouse):
    with warehouse.connect() as con:
        run_sql(con, "geography_municipality_xwalk")
        run_sql(con, "geography_province_prefix")
        meta = table_metadata(
            con, "geography.municipality_xwalk",
            codes_by_layout=markdown_table(
                con, "SELECT layout, count(*) AS codes, count(llma_code) AS with_llma "
                     "FROM geography.municipality_xwalk GROUP BY 1 ORDER BY 1"))
    return dg.MaterializeResult(metadata=meta)


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "sql"}, pool=WRITER_POOL, automation_condition=EAGER,
    deps=["firm_years", "aida_offshoring"],
    description="Per province and year: SMEs in offshore outsourcing, AIDA firms in "
                "offshoring, migrant-owned SMEs.",
)
def province_spillovers(warehouse: Warehouse):
    with warehouse.connect() as con:
        run_sql(con, "geography_province_spillovers")
        meta = table_metadata(
            con, "geography.province_spillovers",
            totals_by_year=markdown_table(
                con, "SELECT year, sum(n_outsourcing) AS outsourcing, sum(n_offshoring) AS "
                     "offshoring, sum(n_migrant) AS migrant FROM geography.province_spillovers "
                     "GROUP BY 1 ORDER BY 1"))
    return dg.MaterializeResult(metadata=meta)
