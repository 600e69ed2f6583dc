-- AIDA firm-years engaged in offshoring: a large firm (kept by the dedup rule) that
-- controls at least one foreign subsidiary (share strictly above $ownership_pct) in the year.
CREATE OR REPLACE TABLE panel.aida_offshoring AS
WITH held AS (
    SELECT a.firm_id, a.year, s.destination
    FROM panel.aida_large a
    JOIN raw.aida_subsidiaries s
      ON s.firm_id = a.firm_id
     AND s.ownership_pct > $ownership_pct
     AND s.first_year <= a.year
     AND (s.last_year IS NULL OR s.last_year >= a.year)
    WHERE a.drop_reason IS NULL
)
SELECT a.firm_id, a.year, a.province, a.sector, a.turnover, a.employees,
       count(*) AS n_subsidiaries,
       count(*) FILTER (WHERE h.destination = 'europe') AS n_sub_europe,
       count(*) FILTER (WHERE h.destination = 'north_africa') AS n_sub_north_africa,
       count(*) FILTER (WHERE h.destination = 'east_asia') AS n_sub_east_asia,
       count(*) FILTER (WHERE h.destination = 'other') AS n_sub_other
FROM held h
JOIN panel.aida_large a USING (firm_id, year)
GROUP BY ALL
ORDER BY a.firm_id, a.year;
