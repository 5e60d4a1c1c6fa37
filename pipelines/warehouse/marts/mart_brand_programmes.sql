-- The province's brand programmes: projects, persons, services and hours. A project belongs
-- to a programme when its brand names it (脱贫攻坚夜校 is 夜校); other brand texts are 其他.
WITH brands(brand, position) AS (
    VALUES ('三关爱', 1), ('暖冬行动', 2), ('西部计划', 3), ('青清河', 4), ('夜校', 5), ('其他', 6)
), branded AS (
    SELECT project_key,
           CASE WHEN brand LIKE '%三关爱%' THEN '三关爱'
                WHEN brand LIKE '%暖冬行动%' THEN '暖冬行动'
                WHEN brand LIKE '%西部计划%' THEN '西部计划'
                WHEN brand LIKE '%青清河%' THEN '青清河'
                WHEN brand LIKE '%夜校%' THEN '夜校'
                ELSE '其他' END AS brand
    FROM dim_project
    WHERE brand IS NOT NULL AND trim(brand) <> ''
), served AS (
    SELECT b.brand, f.volunteer_key, f.hours
    FROM fact_service f JOIN branded b ON b.project_key = f.project_key
)
SELECT b.brand,
       (SELECT count(*) FROM branded p WHERE p.brand = b.brand) AS projects,
       (SELECT count(DISTINCT s.volunteer_key) FROM served s WHERE s.brand = b.brand) AS volunteers,
       (SELECT count(*) FROM served s WHERE s.brand = b.brand) AS services,
       (SELECT coalesce(sum(s.hours), 0) FROM served s WHERE s.brand = b.brand) AS hours
FROM brands b
