"""Metadata helpers shared by the asset modules."""


from typing import Any

import dagster as dg
import duckdb



def data_source(folders: Any) -> Any:
    """Synthetic or real, as the run was asked (`Folders.synthetic`); the generator's seed
    from its truth file when synthetic (`offshoring.reports.source.DataSource`)."""
    from offshoring.reports.source import DataSource
    from offshoring.truth import read_truth

    if not folders.synthetic:
        return DataSource.of(False)
    truth, _ = read_truth(folders.raw)
    return DataSource.of(True, (truth or {}).get("seed"))


def origin_metadata(folders: Any) -> dict[str, str]:
    """``data`` (synthetic or real) and the source line, as metadata."""
    src = data_source(folders)
    return {"data": src.data, "source": src.line()}


def with_origin(result: dg.MaterializeResult, folders: Any) -> dg.MaterializeResult:
    """`result` with the data's origin in its metadata (`origin_metadata`), so every asset page
    in the UI says what the numbers come from."""
    return result._replace(metadata={**(result.metadata or {}), **origin_metadata(folders)})


def table_schema(con: duckdb.DuckDBPyConnection, table: str) -> dg.TableSchema:
    rows = con.execute(f"DESCRIBE {table}").fetchall()
    return dg.TableSchema(columns=[dg.TableColumn(name=r[0], type=str(r[1])) for r in rows])


def table_metadata(con: duckdb.DuckDBPyConnection, table: str, **extra: Any) -> dict[str, Any]:
    """Row count, column schema and the table name, as Dagster shows them."""
    n = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    return {
        "dagster/row_count": int(n),
        "dagster/column_schema": table_schema(con, table),
        "dagster/table_name": table,
        **extra,
    }


def markdown_table(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> dg.MetadataValue:
    """An aggregate query shown as a Markdown table (never firm-level rows)."""

    df = con.sql(sql, params=params or None).pl()
    header = "| " + " | ".join(df.columns) + " |"
    sep = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join("" if v is None else str(v) for v in row) + " |"
            for row in df.iter_rows()]
    return dg.MetadataValue.md("\n".join([header, sep, *body]))


def frame_table(df, digits: int = 4) -> dg.MetadataValue:
    """A small result frame (pandas) as a table the UI renders as one, numbers rounded."""
    import math

    def cell(v):
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            v = v.item()  # numpy scalars
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, digits)
        return v if isinstance(v, (int, str, bool)) or v is None else str(v)

    columns = [str(c) for c in df.columns]
    kinds = {c: ("float" if str(t).startswith("float") else "int" if str(t).startswith("int")
                 else "bool" if str(t) == "bool" else "string") for c, t in zip(columns, df.dtypes)}
    records = [dg.TableRecord({c: cell(v) for c, v in zip(columns, row)})
               for row in df.itertuples(index=False, name=None)]
    return dg.MetadataValue.table(records=records, schema=dg.TableSchema(
        columns=[dg.TableColumn(name=c, type=kinds[c]) for c in columns]))
