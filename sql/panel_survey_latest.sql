-- The survey return that counts for each firm-year: the latest filing (a corrected
-- re-filing supersedes the original). Ties on filing date are rejected at load.
-- Also attaches the sector and the survey ceiling of the year.
CREATE SCHEMA IF NOT EXISTS panel;
CREATE OR REPLACE TEMP TABLE _survey_ranked AS
SELECT r.*,
       row_number() OVER (PARTITION BY firm_id, year
                          ORDER BY filing_date DESC, source_row DESC) AS filing_rank,
       CASE WHEN ateco_2007 LIKE '14%' THEN 'clothing'
            WHEN ateco_2007 LIKE '1520%' THEN 'footwear' END AS sector,
       c.ceiling
FROM raw.survey_returns r
LEFT JOIN _ceiling c USING (year);
