-- Table 1 cells: per type (offshore outsourcing / offshoring) x sector x statistic,
-- the published value and what disclosure control needs, so firm-level rows never
-- leave DuckDB:
--   n_firms      distinct firms behind the cell
--   total        sum over firms of the firm's |contribution| (sum of its firm-years)
--   max_contrib  the largest single firm's |contribution|
--   n_with       means: firms with a non-zero contribution (for a share of firms, e.g.
--                the district share, the firms that have the attribute: the number of
--                firms the share rests on)
-- Parameters: $start_year, $end_year (the averaging window, 2007-2012 in the paper).
-- Offshore outsourcing = survey SME firm-years with outsourcing = 1;
-- offshoring = AIDA firm-years in panel.aida_offshoring.
WITH
fy AS (
    SELECT firm_id, year, sector, turnover, employees, export_share,
           subcontracting_abroad, subcontracting_italy, district
    FROM panel.firm_years
    WHERE outsourcing = 1 AND sector IS NOT NULL
      AND year BETWEEN $start_year AND $end_year
),
ao AS (
    SELECT firm_id, year, sector, turnover, employees, n_subsidiaries
    FROM panel.aida_offshoring
    WHERE sector IS NOT NULL AND year BETWEEN $start_year AND $end_year
),
long AS (
              SELECT 'outsourcing' AS type, sector, firm_id, 'turnover' AS stat, turnover::DOUBLE AS x FROM fy
    UNION ALL SELECT 'outsourcing', sector, firm_id, 'employees', employees::DOUBLE FROM fy
    UNION ALL SELECT 'outsourcing', sector, firm_id, 'export_share', export_share::DOUBLE FROM fy
    UNION ALL SELECT 'outsourcing', sector, firm_id, 'subcontracting_abroad', subcontracting_abroad::DOUBLE FROM fy
    UNION ALL SELECT 'outsourcing', sector, firm_id, 'subcontracting_italy', subcontracting_italy::DOUBLE FROM fy
    UNION ALL SELECT 'outsourcing', sector, firm_id, 'district_share', 100.0 * district FROM fy
    UNION ALL SELECT 'offshoring', sector, firm_id, 'turnover', turnover::DOUBLE FROM ao
    UNION ALL SELECT 'offshoring', sector, firm_id, 'employees', employees::DOUBLE FROM ao
    UNION ALL SELECT 'offshoring', sector, firm_id, 'n_subsidiaries', n_subsidiaries::DOUBLE FROM ao
),
-- A firm's contribution to a mean over firm-years is the sum of its firm-years.
firm_contrib AS (
    SELECT type, sector, stat, firm_id,
           sum(x) AS fx, sum(abs(x)) AS ax, count(*) AS n_fy
    FROM long
    WHERE x IS NOT NULL
    GROUP BY type, sector, stat, firm_id
),
means AS (
    SELECT type, sector, stat,
           sum(fx) / sum(n_fy) AS value,
           count(*) AS n_firms,
           sum(ax) AS total,
           max(ax) AS max_contrib,
           count(*) FILTER (WHERE ax > 0) AS n_with
    FROM firm_contrib
    GROUP BY type, sector, stat
),
-- The number of firms is a yearly average: firm-years over the years each source
-- covers inside the window (a source missing a year does not count it as zero).
source_years AS (
    SELECT 'outsourcing' AS type, count(DISTINCT year) AS n_years
    FROM panel.firm_years WHERE year BETWEEN $start_year AND $end_year
    UNION ALL
    SELECT 'offshoring', count(DISTINCT year)
    FROM panel.aida_offshoring WHERE year BETWEEN $start_year AND $end_year
),
firm_years_both AS (
    SELECT 'outsourcing' AS type, sector, firm_id, year FROM fy
    UNION ALL
    SELECT 'offshoring', sector, firm_id, year FROM ao
),
counts AS (
    SELECT f.type, f.sector, 'n_firms' AS stat,
           count(*)::DOUBLE / y.n_years AS value,
           count(DISTINCT f.firm_id) AS n_firms,
           NULL::DOUBLE AS total, NULL::DOUBLE AS max_contrib
    FROM firm_years_both f JOIN source_years y USING (type)
    GROUP BY f.type, f.sector, y.n_years
),
-- Durations: mean length in years of the spells that overlap the window.
firm_sector AS (
    SELECT firm_id, arg_max(sector, year) AS sector
    FROM panel.firm_years WHERE sector IS NOT NULL
    GROUP BY firm_id
),
outsourcing_durations AS (
    SELECT s.firm_id, fs.sector, s.duration::DOUBLE AS duration
    FROM panel.outsourcing_spells s
    JOIN firm_sector fs USING (firm_id)
    WHERE s.destination = 'any'
      AND s.start_year <= $end_year AND s.end_year >= $start_year
),
-- Offshoring spells: runs of consecutive years in panel.aida_offshoring.
aida_runs AS (
    SELECT firm_id, sector, year,
           year - row_number() OVER (PARTITION BY firm_id ORDER BY year) AS grp
    FROM panel.aida_offshoring
    WHERE sector IS NOT NULL
),
offshoring_durations AS (
    SELECT firm_id, arg_max(sector, year) AS sector,
           (max(year) - min(year) + 1)::DOUBLE AS duration
    FROM aida_runs
    GROUP BY firm_id, grp
    HAVING min(year) <= $end_year AND max(year) >= $start_year
),
durations AS (
    SELECT 'outsourcing' AS type, sector, 'duration' AS stat, avg(duration) AS value,
           count(DISTINCT firm_id) AS n_firms, NULL::DOUBLE AS total, NULL::DOUBLE AS max_contrib
    FROM outsourcing_durations GROUP BY sector
    UNION ALL
    SELECT 'offshoring', sector, 'duration', avg(duration),
           count(DISTINCT firm_id), NULL::DOUBLE, NULL::DOUBLE
    FROM offshoring_durations GROUP BY sector
)
SELECT type, sector, stat, value, n_firms::BIGINT AS n_firms, total, max_contrib,
       NULL::BIGINT AS n_with FROM counts
UNION ALL
SELECT type, sector, stat, value, n_firms::BIGINT, total, max_contrib, n_with::BIGINT FROM means
UNION ALL
SELECT type, sector, stat, value, n_firms::BIGINT, total, max_contrib, NULL::BIGINT FROM durations
ORDER BY type, sector, stat;
