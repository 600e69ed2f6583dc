"""Report library: disclosure control, tables, figures, provenance, index page.

Pure library code (no Dagster) that reads no settings file: the disclosure rules,
periods, years, model specifications and the origin of the data (`source.DataSource`)
are arguments, handed down by the assets from the study specification
(`offshoring.spec.StudySpec`). Assets call, in order: a builder (`tables`,
`figures`) that reads cell aggregates from DuckDB and runs `sdc.protect`, a check
(`sdc.violations`, `render.disclosure_violations`), a writer (`render.write_table`,
`figures.write_figure`) that runs `sdc.assert_safe` again before writing, and
finally `html.write_index`.
"""
