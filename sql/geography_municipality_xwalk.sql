-- Every municipality code in every ISTAT layout -> the reference (current) municipality.
-- layout: code_103 (up to 2005), code_107 (2006-2009), code_110 (2010-2016), current.
CREATE SCHEMA IF NOT EXISTS geography;
CREATE OR REPLACE TABLE geography.municipality_xwalk AS
WITH m AS (SELECT * FROM raw.municipalities),
codes AS (
    SELECT 'code_103' AS layout, code_103 AS code, municipality_code FROM m
    UNION ALL SELECT 'code_107', code_107, municipality_code FROM m
    UNION ALL SELECT 'code_110', code_110, municipality_code FROM m
    UNION ALL SELECT 'current', municipality_code, municipality_code FROM m
)
SELECT c.layout, c.code, m.municipality_code AS municipality_ref, m.province,
       m.region, m.macro_area, l.llma_code
FROM codes c
JOIN m USING (municipality_code)
LEFT JOIN raw.llma l ON l.municipality_code = m.municipality_code;
