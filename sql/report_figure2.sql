-- Figure 2 cells: firms per province (sigla, reference layout) by type and sector
-- in one year ($year). A null province (municipality merged away, unknown) is kept
-- as a null row so the panel total stays the sum of its cells.
SELECT 'outsourcing' AS type, sector, province, count(DISTINCT firm_id)::BIGINT AS n_firms
FROM panel.firm_years
WHERE year = $year AND outsourcing = 1 AND sector IS NOT NULL
GROUP BY sector, province
UNION ALL
SELECT 'offshoring', sector, province, count(DISTINCT firm_id)::BIGINT
FROM panel.aida_offshoring
WHERE year = $year AND sector IS NOT NULL
GROUP BY sector, province
ORDER BY type, sector, province;
