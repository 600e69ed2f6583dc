-- AIDA firm-years deduplicated against the survey by the turnover ceiling.
-- A firm-year in both sources is counted once: the survey return decides (at or
-- below the ceiling it is an SME of the survey panel; above, the AIDA row counts). A
-- return with an empty turnover decides nothing: the AIDA row counts when its turnover
-- is above the ceiling (the return is then in panel.survey_rejects), else the return.
-- A firm-year only in AIDA is kept when its turnover is above the ceiling, or
-- missing (n.d.: AIDA is extracted for large firms, and no survey return duplicates it).
-- A year with neither turnover nor employees is not a firm-year of the export.
CREATE SCHEMA IF NOT EXISTS panel;
CREATE OR REPLACE TEMP TABLE _aida_classified AS
SELECT a.*, c.ceiling,
       sector_of(a.ateco_2007) AS sector,
       s.firm_id IS NOT NULL AS in_survey,
       s.turnover AS survey_turnover
FROM raw.aida_firm_years a
LEFT JOIN _ceiling c USING (year)
LEFT JOIN (SELECT firm_id, year, turnover FROM survey_by_filing() WHERE filing_rank = 1) s
       ON s.firm_id = a.firm_id AND s.year = a.year;

-- The province: AIDA's sigla of the registered office, in the reference layout. A sigla
-- of a province the list no longer has (the Sardinian provinces of 2005-2016, listed with
-- their ISTAT codes in _abolished_provinces) becomes the reference province holding most
-- of its municipalities (by their codes of 2010-2016; ties to the alphabetically first
-- sigla), the rule geography.province_prefix applies to a merged-away municipality code.
-- Any other sigla outside the list was refused before this.
CREATE OR REPLACE TABLE panel.aida_large AS
WITH listed AS (SELECT DISTINCT province FROM raw.municipalities),
successor AS (SELECT sigla, province FROM _province_successors),
sigla AS (SELECT *, upper(trim(province)) AS sigla FROM _aida_classified)
SELECT firm_id, year, company_name,
       CASE WHEN s.sigla IN (SELECT province FROM listed) THEN s.sigla
            ELSE coalesce(successor.province, s.sigla) END AS province,
       ateco_2007, sector, turnover, employees,
       CASE WHEN turnover IS NULL AND employees IS NULL THEN 'no_data_in_year'
            WHEN sector IS NULL THEN 'outside_clothing_footwear'
            WHEN in_survey AND (survey_turnover <= ceiling
                                OR (survey_turnover IS NULL AND NOT coalesce(turnover > ceiling, false)))
                THEN 'in_survey_sme_panel'
            WHEN NOT in_survey AND turnover <= ceiling THEN 'at_or_below_ceiling'
       END AS drop_reason
FROM sigla s
LEFT JOIN successor USING (sigla);
