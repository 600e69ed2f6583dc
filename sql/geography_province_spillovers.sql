-- Per province (reference layout) and year: survey SMEs in offshore outsourcing,
-- AIDA firms engaged in offshoring, migrant-owned SMEs (sole proprietors born abroad).
-- Every province of the list appears in every panel year (zero, not missing).
CREATE OR REPLACE TABLE geography.province_spillovers AS
WITH provinces AS (SELECT DISTINCT province FROM raw.municipalities),
years AS (SELECT DISTINCT year FROM panel.firm_years),
sme AS (
    SELECT province, year, sum(outsourcing) AS n_outsourcing,
           sum(foreign_owner) AS n_migrant
    FROM panel.firm_years GROUP BY ALL
),
large AS (
    SELECT province, year, count(*) AS n_offshoring
    FROM panel.aida_offshoring GROUP BY ALL
)
SELECT p.province, y.year,
       coalesce(sme.n_outsourcing, 0)::INTEGER AS n_outsourcing,
       coalesce(large.n_offshoring, 0)::INTEGER AS n_offshoring,
       coalesce(sme.n_migrant, 0)::INTEGER AS n_migrant
FROM provinces p CROSS JOIN years y
LEFT JOIN sme USING (province, year)
LEFT JOIN large USING (province, year)
ORDER BY p.province, y.year;
