-- Survey returns left out of the SME panel, each with the reason.
CREATE OR REPLACE TABLE panel.survey_rejects AS
SELECT firm_id, year, filing_date, source_file, source_row, reason
FROM (
    SELECT *,
           CASE WHEN filing_rank > 1 THEN 'superseded_by_later_filing'
                -- an empty code is an unknown industry, not another one
                WHEN ateco_2007 IS NULL THEN 'missing_ateco'
                WHEN sector IS NULL THEN 'outside_clothing_footwear'
                WHEN turnover > ceiling THEN 'above_turnover_ceiling'
                WHEN turnover IS NULL AND aida_turnover > ceiling THEN 'turnover_empty_above_ceiling_in_aida'
           END AS reason
    FROM _survey_ranked
)
WHERE reason IS NOT NULL
ORDER BY year, firm_id, filing_date;
