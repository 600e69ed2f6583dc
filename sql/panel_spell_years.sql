-- One row per spell and year in (start, stop] form for the Cox model of backshoring:
-- spell time in years (the first spell-year is (0, 1]), the event in the spell's last
-- year when the spell ended by backshoring, and the time-varying covariates of the year.
-- Export share and the province count of outsourcing firms are taken in the year
-- before the spell began (the decision to go abroad), as in the paper.
CREATE OR REPLACE TABLE panel.spell_years AS
SELECT s.firm_id, s.destination, s.spell_no, m.year,
       (m.year - s.start_year)::INTEGER AS start,
       (m.year - s.start_year + 1)::INTEGER AS stop,
       (m.year = s.end_year AND s.outcome = 'backshoring')::TINYINT AS event,
       s.left_censored,
       CASE s.destination WHEN 'europe' THEN m.share_europe
                          WHEN 'north_africa' THEN m.share_north_africa
                          WHEN 'east_asia' THEN m.share_east_asia
                          WHEN 'other' THEN m.share_other
                          ELSE 100.0 END AS share_destination,
       -- the same cost over all subcontracting, Italy included ("relative to the total costs of
       -- subcontracting", C&P 3.4 read literally; a robustness variant of Table 3)
       CASE WHEN m.subcontracting_abroad + m.subcontracting_italy > 0 THEN  -- NULL when either is missing
            100 * (CASE s.destination WHEN 'europe' THEN coalesce(m.subcontracting_europe, 0)
                                      WHEN 'north_africa' THEN coalesce(m.subcontracting_north_africa, 0)
                                      WHEN 'east_asia' THEN coalesce(m.subcontracting_east_asia, 0)
                                      WHEN 'other' THEN coalesce(m.subcontracting_other, 0)
                                      ELSE m.subcontracting_abroad END)
            / (m.subcontracting_abroad + m.subcontracting_italy) END AS share_destination_all,
       m.supplier, m.profit, pre.export_share AS export_share_pre,
       m.wage_per_employee_k, m.roi, m.employees,
       first.n_outsourcing_prov_lag AS n_outsourcing_prov_pre,
       m.n_migrant_prov_lag, m.sector, m.macro_area, m.province, m.district
FROM panel.outsourcing_spells s
JOIN panel.model_panel m
  ON m.firm_id = s.firm_id AND m.year BETWEEN s.start_year AND s.end_year
LEFT JOIN panel.firm_years pre ON pre.firm_id = s.firm_id AND pre.year = s.start_year - 1
LEFT JOIN panel.model_panel first ON first.firm_id = s.firm_id AND first.year = s.start_year
ORDER BY s.firm_id, s.destination, s.spell_no, m.year;
