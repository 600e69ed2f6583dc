-- The deduplicated firm-year panel of survey SMEs, key (firm_id, year), with
-- harmonised geography (reference = current ISTAT list) and derived variables.
-- Municipality codes are looked up in the layout valid in the return's year; a code
-- found only in another layout is taken from the nearest layout; a code found in none
-- keeps the province its first three digits denote (geo_resolution says which). A code
-- that resolves to no province at all is refused by the panel schema (province is
-- required), naming the delivery file and row: the one geography policy.
CREATE OR REPLACE TEMP VIEW _sme AS
SELECT *, layout_rank_of_year(year) AS layout_rank
FROM _survey_ranked
WHERE filing_rank = 1 AND sector IS NOT NULL
  AND (turnover <= ceiling
       -- an empty turnover: an SME of the survey unless AIDA puts the firm-year above the ceiling
       OR (turnover IS NULL AND NOT coalesce(aida_turnover > ceiling, false)));

-- resolved once per distinct (code, layout of its year), not once per firm-year
CREATE OR REPLACE TEMP TABLE _geo AS
WITH codes AS (SELECT DISTINCT municipality_code, layout_rank FROM _sme),
cand AS (
    SELECT c.municipality_code, c.layout_rank, x.municipality_ref, x.province, x.region,
           x.macro_area, x.llma_code,
           abs(layout_rank_of(x.layout) - c.layout_rank) AS distance
    FROM codes c
    JOIN geography.municipality_xwalk x ON x.code = c.municipality_code
)
SELECT municipality_code, layout_rank, municipality_ref, province, region, macro_area, llma_code,
       CASE WHEN distance = 0 THEN 'exact' ELSE 'other_layout' END AS geo_resolution
FROM cand
QUALIFY row_number() OVER (PARTITION BY municipality_code, layout_rank
                           ORDER BY distance, municipality_ref) = 1;

CREATE OR REPLACE TABLE panel.firm_years AS
SELECT s.firm_id, s.year::INTEGER AS year, s.filing_date, s.ateco_2007, s.sector, s.municipality_code,
       g.municipality_ref,
       coalesce(g.province, p.province) AS province,
       coalesce(g.region, p.region) AS region,
       coalesce(g.macro_area, p.macro_area) AS macro_area,
       g.llma_code,
       coalesce(g.geo_resolution,
                CASE WHEN p.province IS NOT NULL THEN 'province_prefix' ELSE 'unresolved' END)
           AS geo_resolution,
       d.district::TINYINT AS district,
       s.turnover, s.employees, s.value_added, s.wage_costs, s.net_income, s.roi,
       s.export_share, s.credit_access::TINYINT AS credit_access, s.market_area,
       s.high_value_added::TINYINT AS high_value_added, s.supplier::TINYINT AS supplier,
       s.subcontracting_italy, s.subcontracting_europe, s.subcontracting_north_africa,
       s.subcontracting_east_asia, s.subcontracting_other,
       s.legal_form, s.foreign_owner::TINYINT AS foreign_owner,
       -- An empty amount is missing, not zero (the contract). The total abroad and the shares
       -- need all four regions; the firm is outsourcing when a reported region is positive,
       -- not outsourcing when all four are reported and none is, and of unknown status
       -- otherwise (NULL: never read as "stopped", so no spell ends by backshoring on it).
       CASE WHEN abroad.n_missing = 0 THEN abroad.v END AS subcontracting_abroad,
       CASE WHEN abroad.v > 0 THEN 1 WHEN abroad.n_missing = 0 THEN 0 END::TINYINT AS outsourcing,
       (s.subcontracting_europe > 0)::TINYINT AS outsourcing_europe,
       (s.subcontracting_north_africa > 0)::TINYINT AS outsourcing_north_africa,
       (s.subcontracting_east_asia > 0)::TINYINT AS outsourcing_east_asia,
       (s.subcontracting_other > 0)::TINYINT AS outsourcing_other,
       CASE WHEN abroad.n_missing = 0 AND abroad.v > 0 THEN 100 * s.subcontracting_europe / abroad.v END AS share_europe,
       CASE WHEN abroad.n_missing = 0 AND abroad.v > 0 THEN 100 * s.subcontracting_north_africa / abroad.v END AS share_north_africa,
       CASE WHEN abroad.n_missing = 0 AND abroad.v > 0 THEN 100 * s.subcontracting_east_asia / abroad.v END AS share_east_asia,
       CASE WHEN abroad.n_missing = 0 AND abroad.v > 0 THEN 100 * s.subcontracting_other / abroad.v END AS share_other,
       s.export_share / 100 AS export_ratio,
       CASE WHEN s.employees > 0 THEN s.value_added / s.employees / 1000 END AS va_per_employee_k,
       CASE WHEN s.employees > 0 THEN s.wage_costs / s.employees / 1000 END AS wage_per_employee_k,
       (s.net_income > 0)::TINYINT AS profit,
       CASE s.market_area WHEN 'local' THEN 1 WHEN 'provincial' THEN 2 WHEN 'regional' THEN 3
                          WHEN 'national' THEN 4 WHEN 'international' THEN 5 END::TINYINT
           AS market_area_order,
       s.source_file, s.source_row
FROM _sme s
CROSS JOIN LATERAL (
    SELECT coalesce(s.subcontracting_europe, 0) + coalesce(s.subcontracting_north_africa, 0)
         + coalesce(s.subcontracting_east_asia, 0) + coalesce(s.subcontracting_other, 0) AS v,
           (s.subcontracting_europe IS NULL)::INTEGER + (s.subcontracting_north_africa IS NULL)::INTEGER
         + (s.subcontracting_east_asia IS NULL)::INTEGER + (s.subcontracting_other IS NULL)::INTEGER AS n_missing
) abroad
LEFT JOIN _geo g ON g.municipality_code = s.municipality_code AND g.layout_rank = s.layout_rank
LEFT JOIN geography.province_prefix p
       ON g.municipality_code IS NULL
      AND p.prefix = substr(s.municipality_code, 1, 3)
      AND p.layout = layout_of_rank(s.layout_rank)
LEFT JOIN geography.llma_districts d ON d.llma_code = g.llma_code
ORDER BY s.firm_id, s.year;
