-- The survey return that counts for each firm-year: the latest filing (a corrected
-- re-filing supersedes the original). Ties on filing date are rejected at load.
-- Also attaches the sector, the survey ceiling of the year and, for a return whose
-- turnover is empty, AIDA's turnover of the firm-year (_aida_turnover, set up by
-- offshoring.panel): a missing survey turnover does not show the firm is under the
-- ceiling when AIDA says it is above; the AIDA row then counts (panel_aida_large.sql).
CREATE SCHEMA IF NOT EXISTS panel;
CREATE OR REPLACE TEMP TABLE _survey_ranked AS
SELECT r.*, sector_of(r.ateco_2007) AS sector, c.ceiling,
       CASE WHEN r.turnover IS NULL THEN a.turnover END AS aida_turnover
FROM survey_by_filing() r
LEFT JOIN _ceiling c USING (year)
LEFT JOIN _aida_turnover a ON a.firm_id = r.firm_id AND a.year = r.year;
