-- Rules that several tables share, written once, as DuckDB macros. offshoring.sqlfiles
-- creates them (temporary, per connection) before it runs any other SQL file.

-- The study's industries (C&P 3.1, sector studies D07B and D08U): ATECO 2007 division 14
-- is clothing, group 15.20 footwear; anything else is outside the study.
CREATE OR REPLACE TEMP MACRO sector_of(ateco) AS
    CASE WHEN ateco LIKE '14%' THEN 'clothing' WHEN ateco LIKE '1520%' THEN 'footwear' END;

-- ISTAT's municipality code layouts, in order: 103 provinces up to 2005, 107 in 2006-2009,
-- 110 in 2010-2016, the current list after. A return's code is read in its year's layout.
CREATE OR REPLACE TEMP MACRO layout_rank_of_year(y) AS
    CASE WHEN y <= 2005 THEN 0 WHEN y <= 2009 THEN 1 WHEN y <= 2016 THEN 2 ELSE 3 END;
CREATE OR REPLACE TEMP MACRO layout_rank_of(layout) AS
    CASE layout WHEN 'code_103' THEN 0 WHEN 'code_107' THEN 1 WHEN 'code_110' THEN 2 ELSE 3 END;
CREATE OR REPLACE TEMP MACRO layout_of_rank(r) AS
    CASE r WHEN 0 THEN 'code_103' WHEN 1 THEN 'code_107' WHEN 2 THEN 'code_110' ELSE 'current' END;

-- The survey returns with the rank of each filing within its firm-year: 1 is the return that
-- counts (the latest filing; a corrected re-filing supersedes the original; equal dates,
-- refused at load, would fall to the later row of the delivery).
CREATE OR REPLACE TEMP MACRO survey_by_filing() AS TABLE
    SELECT *, row_number() OVER (PARTITION BY firm_id, year
                                 ORDER BY filing_date DESC, source_row DESC) AS filing_rank
    FROM raw.survey_returns;
