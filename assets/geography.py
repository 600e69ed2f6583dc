"""Geography layer: code crosswalk, industrial districts, lagged province spillovers."""


import dagster as dg

from assets._common import markdown_table, table_metadata, with_origin
from offshoring.districts import read_override_list, run_district_procedure
from offshoring.sqlfiles import run_sql
from assets.resources import WRITER_POOL, Folders, Study, Warehouse

GROUP = "geography"


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "sql"}, pool=WRITER_POOL,
    deps=["municipalities", "llma_map"],
    description="Every municipality code of every ISTAT layout (103, 107, 110 provinces, "
                "current) mapped to the reference municipality, province, region and LLMA.",
)
def municipality_xwalk(warehouse: Warehouse, folders: Folders):
    with warehouse.connect() as con:
        # the LLMA map was checked against the municipality list when it was read; a list loaded
        # since (a user's newer file) may lack some of its codes: their firms would get no area
        unlisted = con.execute(
            "SELECT count(*), min(municipality_code) FROM raw.llma WHERE municipality_code NOT IN "
            "(SELECT municipality_code FROM raw.municipalities)").fetchall()[0]
        if unlisted[0]:
            raise dg.Failure(description=(
                f"raw.llma (reference/llma.csv) has {unlisted[0]} municipality code(s) that the municipality "
                f"list loaded now does not have (e.g. {unlisted[1]}): the list changed since the "
                f"map was loaded. Give the map the list's current codes, or use the list it was made "
                f"with; nothing was rebuilt."))
        run_sql(con, "geography_municipality_xwalk")
        run_sql(con, "geography_province_prefix")
        meta = table_metadata(
            con, "geography.municipality_xwalk",
            codes_by_layout=markdown_table(
                con, "SELECT layout, count(*) AS codes, count(llma_code) AS with_llma "
                     "FROM geography.municipality_xwalk GROUP BY 1 ORDER BY 1"))
    return with_origin(dg.MaterializeResult(metadata=meta), folders)


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "polars"}, pool=WRITER_POOL,
    deps=["census_employment"],
    description="Industrial districts by LLMA (Sforzi-ISTAT steps, settings in "
                "config/districts.yaml); a list in reference/districts.csv of the raw folder, "
                "or the settings' override_file, overrides the computed flags.",
)
def llma_districts(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders, study: Study):
    settings = study.spec.districts
    user_list = folders.raw / "reference" / "districts.csv"
    override = read_override_list(user_list) if user_list.exists() else None
    with warehouse.connect() as con:
        census = con.sql("SELECT * FROM raw.census_employment").pl()
        result = run_district_procedure(census, settings, override)
        con.execute("CREATE SCHEMA IF NOT EXISTS geography")
        con.register("_districts", result.table.to_arrow())
        con.execute("CREATE OR REPLACE TABLE geography.llma_districts AS SELECT * FROM _districts")
        con.unregister("_districts")
        meta = table_metadata(
            con, "geography.llma_districts",
            override_file=str(user_list) if override is not None else None,
            n_districts=result.metadata["n_districts"],
            procedure=dg.MetadataValue.json(result.metadata),
            districts_by_group=markdown_table(
                con, "SELECT dominant_group, count(*) AS districts FROM geography.llma_districts "
                     "WHERE district = 1 GROUP BY 1 ORDER BY 2 DESC"),
        )
    return with_origin(dg.MaterializeResult(metadata=meta), folders)


@dg.asset(
    group_name=GROUP, kinds={"duckdb", "sql"}, pool=WRITER_POOL,
    deps=["firm_years", "aida_offshoring"],
    description="Per province and year: SMEs in offshore outsourcing, AIDA firms in "
                "offshoring, migrant-owned SMEs.",
)
def province_spillovers(warehouse: Warehouse, folders: Folders):
    with warehouse.connect() as con:
        run_sql(con, "geography_province_spillovers")
        meta = table_metadata(
            con, "geography.province_spillovers",
            totals_by_year=markdown_table(
                con, "SELECT year, sum(n_outsourcing) AS outsourcing, sum(n_offshoring) AS "
                     "offshoring, sum(n_migrant) AS migrant FROM geography.province_spillovers "
                     "GROUP BY 1 ORDER BY 1"))
    return with_origin(dg.MaterializeResult(metadata=meta), folders)
