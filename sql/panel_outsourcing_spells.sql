-- Spells of offshore outsourcing per firm (destination 'any') and per firm x region:
-- runs of consecutive panel years with positive foreign subcontracting.
-- Outcome: backshoring when the firm is in the panel the year after the spell and
-- subcontracts nothing abroad (nothing in that region); censored otherwise (last
-- survey year, the firm left the survey, it crossed the turnover ceiling, or its return
-- of the next year left the amounts empty: 'status_unknown', never read as a stop).
-- A spell is left-censored when the firm was not observed the year before it began
-- (its first observed year, or after a gap), or was of unknown status that year: its
-- true start is unknown.
CREATE OR REPLACE TABLE panel.outsourcing_spells AS
WITH flags AS (
    SELECT firm_id, year, 'any' AS destination, outsourcing AS flag FROM panel.firm_years
    UNION ALL SELECT firm_id, year, 'europe', outsourcing_europe FROM panel.firm_years
    UNION ALL SELECT firm_id, year, 'north_africa', outsourcing_north_africa FROM panel.firm_years
    UNION ALL SELECT firm_id, year, 'east_asia', outsourcing_east_asia FROM panel.firm_years
    UNION ALL SELECT firm_id, year, 'other', outsourcing_other FROM panel.firm_years
),
runs AS (
    SELECT firm_id, destination, year,
           year - row_number() OVER (PARTITION BY firm_id, destination ORDER BY year) AS grp
    FROM flags WHERE flag = 1
),
spells AS (
    SELECT firm_id, destination, min(year) AS start_year, max(year) AS end_year
    FROM runs GROUP BY firm_id, destination, grp
),
last_year AS (SELECT max(year) AS y FROM panel.firm_years)
SELECT s.firm_id, s.destination,
       row_number() OVER (PARTITION BY s.firm_id, s.destination ORDER BY s.start_year)::INTEGER
           AS spell_no,
       s.start_year, s.end_year, (s.end_year - s.start_year + 1)::INTEGER AS duration,
       CASE WHEN nxt.flag = 0 THEN 'backshoring' ELSE 'censored' END AS outcome,
       CASE WHEN nxt.flag = 0 THEN NULL
            WHEN nxt.firm_id IS NOT NULL OR unk.firm_id IS NOT NULL THEN 'status_unknown'
            WHEN s.end_year >= last_year.y THEN 'last_survey_year'
            WHEN rej.firm_id IS NOT NULL THEN 'above_turnover_ceiling'
            ELSE 'left_survey' END AS censoring,
       prev.firm_id IS NULL OR prev.flag IS NULL AS left_censored
FROM spells s
CROSS JOIN last_year
LEFT JOIN flags nxt
       ON nxt.firm_id = s.firm_id AND nxt.destination = s.destination AND nxt.year = s.end_year + 1
LEFT JOIN flags prev
       ON prev.firm_id = s.firm_id AND prev.destination = s.destination AND prev.year = s.start_year - 1
LEFT JOIN (SELECT DISTINCT firm_id, year FROM panel.survey_rejects
           WHERE reason IN ('above_turnover_ceiling', 'turnover_empty_above_ceiling_in_aida')) rej
       ON rej.firm_id = s.firm_id AND rej.year = s.end_year + 1
-- a return of the next year left out for its empty ATECO code: in the survey, status unknown
LEFT JOIN (SELECT DISTINCT firm_id, year FROM panel.survey_rejects WHERE reason = 'missing_ateco') unk
       ON unk.firm_id = s.firm_id AND unk.year = s.end_year + 1
ORDER BY s.firm_id, s.destination, s.start_year;
