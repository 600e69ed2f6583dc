-- Rows by source, year and outcome of the deduplication.
CREATE OR REPLACE TABLE panel.dedup_report AS
SELECT 'survey' AS source, year, 'kept_sme_panel' AS reason, count(*) AS n_rows
FROM panel.firm_years GROUP BY ALL
UNION ALL
SELECT 'survey', year, reason, count(*) FROM panel.survey_rejects GROUP BY ALL
UNION ALL
SELECT 'aida', year, coalesce(drop_reason, 'kept_large_firm'), count(*)
FROM panel.aida_large GROUP BY ALL
ORDER BY source, year, reason;
