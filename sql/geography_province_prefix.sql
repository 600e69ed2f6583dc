-- A code absent from the list (a municipality since merged away) keeps the province
-- its first three digits denote in the layout of its year. Where that old province
-- now spans several (Milano -> Milano + Monza e Brianza), the reference province is
-- the one holding most of its municipalities; ties go to the alphabetically first sigla.
CREATE OR REPLACE TABLE geography.province_prefix AS
WITH pref AS (
    SELECT layout, substr(code, 1, 3) AS prefix, province, region, macro_area,
           count(*) AS n
    FROM geography.municipality_xwalk
    GROUP BY ALL
)
SELECT layout, prefix, province, region, macro_area
FROM pref
QUALIFY row_number() OVER (PARTITION BY layout, prefix ORDER BY n DESC, province) = 1;
