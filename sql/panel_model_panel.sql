-- The firm-year panel with the province aggregates at t-1 joined to each firm-year.
-- Leave-one-out (setting $leave_one_out): a firm's own outsourcing, migrant status
-- and offshoring at t-1 in the same province are taken out of the counts it sees.
-- The first panel year has no t-1: the lags stay missing, never zero.
CREATE OR REPLACE TABLE panel.model_panel AS
SELECT f.*,
       s.n_outsourcing - CASE WHEN $leave_one_out AND own.province = f.province
                              THEN coalesce(own.outsourcing, 0) ELSE 0 END
           AS n_outsourcing_prov_lag,
       s.n_offshoring - CASE WHEN $leave_one_out AND off.province = f.province
                             THEN 1 ELSE 0 END
           AS n_offshoring_prov_lag,
       s.n_migrant - CASE WHEN $leave_one_out AND own.province = f.province
                          THEN coalesce(own.foreign_owner, 0) ELSE 0 END
           AS n_migrant_prov_lag
FROM panel.firm_years f
LEFT JOIN geography.province_spillovers s
       ON s.province = f.province AND s.year = f.year - 1
LEFT JOIN panel.firm_years own
       ON own.firm_id = f.firm_id AND own.year = f.year - 1
LEFT JOIN panel.aida_offshoring off
       ON off.firm_id = f.firm_id AND off.year = f.year - 1
ORDER BY f.firm_id, f.year;
