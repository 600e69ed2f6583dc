-- The survey return that counts for each firm-year: the latest filing (a corrected
-- re-filing supersedes the original). Ties on filing date are rejected at load.
-- Also attaches the sector and the survey ceiling of the year.
CREATE SCHEMA IF NOT EXISTS panel;
CREATE OR REPLACE TEMP TABLE _survey_ranked AS
SELECT r.*, sector_of(r.ateco_2007) AS sector, c.ceiling
FROM survey_by_filing() r
LEFT JOIN _ceiling c USING (year);
