-- First and last calendar year of the spell-years in the Cox model's sample (Table 3's
-- period), from panel.spell_years and the Cox specification, when the stored fit does
-- not record them (offshoring.reports.tables.cox_period): the rows of the spec's
-- destinations ($destinations null: every destination), without the left-censored
-- spells when $exclude_left_censored, without the spells begun before $first_spell_year
-- (null: none left out).
SELECT min(year)::INTEGER AS first_year, max(year)::INTEGER AS last_year, count(*)::BIGINT AS n_rows
FROM panel.spell_years
WHERE ($destinations::VARCHAR[] IS NULL OR list_contains($destinations::VARCHAR[], destination))
  AND (NOT $exclude_left_censored::BOOLEAN OR NOT coalesce(left_censored, FALSE))
  AND ($first_spell_year::INTEGER IS NULL OR year - start >= $first_spell_year::INTEGER);
