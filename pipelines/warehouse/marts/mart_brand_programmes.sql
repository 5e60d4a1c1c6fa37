-- The province's brand programmes: projects, persons, services and hours. A project belongs
-- to the first programme its brand names (脱贫攻坚夜校 is 夜校); other brand texts are 其他.
-- The programmes and their order: in_brand_programmes (schemas/categories.yaml).
WITH brands(brand, position) AS (
    SELECT brand, position FROM in_brand_programmes
    UNION ALL SELECT '其他', (SELECT count(*) + 1 FROM in_brand_programmes)
), branded AS (
    SELECT p.project_key, coalesce(min_by(b.brand, b.position), '其他') AS brand
    FROM dim_project p LEFT JOIN in_brand_programmes b ON contains(p.brand, b.brand)
    WHERE p.brand IS NOT NULL AND trim(p.brand) <> ''
    GROUP BY p.project_key
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
