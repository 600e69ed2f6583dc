-- First and last year t of the dynamic probit's estimation sample (Table 2's period),
-- from panel.model_panel and the probit specification, when the stored fit does not
-- record them (offshoring.reports.tables.probit_period):
--   an estimation year is within [$first_year, $last_year] ($last_year null: the latest
--   year loaded) and has firms with a row in t-1 (the lag), after their initial period:
--   each firm's first year from $first_year - 1 on, or the common year $initial_year
--   (the firm present that year).
-- Rows dropped later for missing values are not seen here; a whole year is rarely lost.
WITH bounds AS (
    SELECT $first_year::INTEGER AS first_year,
           coalesce($last_year::INTEGER, (SELECT max(year) FROM panel.model_panel)) AS last_year,
           $initial_year::INTEGER AS initial_year
),
est AS (
    SELECT m.firm_id, m.year
    FROM panel.model_panel m
    JOIN panel.model_panel p ON p.firm_id = m.firm_id AND p.year = m.year - 1
    CROSS JOIN bounds b
    WHERE m.year BETWEEN b.first_year AND b.last_year
      AND p.year >= b.first_year - 1
      AND (b.initial_year IS NULL
           OR (m.year > b.initial_year
               AND m.firm_id IN (SELECT firm_id FROM panel.model_panel WHERE year = b.initial_year)))
)
SELECT min(year)::INTEGER AS first_year, max(year)::INTEGER AS last_year, count(*)::BIGINT AS n_obs
FROM est;
