-- Figure 1 cells: destination regions of offshore outsourcing and of offshoring,
-- by sector, in one year ($year).
--   n_firms  firms of the group active in the region (the bar's contributors)
--   n_total  firms of the group (the share's denominator)
-- Offshore outsourcing: survey SMEs with outsourcing = 1 and subcontracting costs in
-- the region. Offshoring: AIDA firm-years in panel.aida_offshoring with a controlled
-- subsidiary in the region (n_sub_<region>, counted by the panel with its ownership
-- threshold, so "controlled" has one definition).
WITH
flags AS (
    SELECT 'outsourcing' AS type, sector, firm_id,
           coalesce(subcontracting_europe, 0) > 0 AS europe,
           coalesce(subcontracting_north_africa, 0) > 0 AS north_africa,
           coalesce(subcontracting_east_asia, 0) > 0 AS east_asia,
           coalesce(subcontracting_other, 0) > 0 AS other
    FROM panel.firm_years
    -- the regions of a return with an empty regional amount are not all known: left out
    -- of the shares rather than read as "not in that region" (subcontracting_abroad is
    -- NULL exactly then)
    WHERE year = $year AND outsourcing = 1 AND subcontracting_abroad IS NOT NULL AND sector IS NOT NULL
    UNION ALL
    SELECT 'offshoring', sector, firm_id,
           coalesce(n_sub_europe, 0) > 0,
           coalesce(n_sub_north_africa, 0) > 0,
           coalesce(n_sub_east_asia, 0) > 0,
           coalesce(n_sub_other, 0) > 0
    FROM panel.aida_offshoring
    WHERE year = $year AND sector IS NOT NULL
),
long AS (
              SELECT type, sector, firm_id, 'europe' AS region, europe AS active FROM flags
    UNION ALL SELECT type, sector, firm_id, 'north_africa', north_africa FROM flags
    UNION ALL SELECT type, sector, firm_id, 'east_asia', east_asia FROM flags
    UNION ALL SELECT type, sector, firm_id, 'other', other FROM flags
)
SELECT type, sector, region,
       (count(DISTINCT firm_id) FILTER (WHERE active))::BIGINT AS n_firms,
       count(DISTINCT firm_id)::BIGINT AS n_total
FROM long
GROUP BY type, sector, region
ORDER BY type, sector, region;
