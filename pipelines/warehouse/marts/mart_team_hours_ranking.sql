-- Organizations ranked by the deduplicated hours of service given with them.
WITH team AS (
    SELECT org_key, sum(hours) AS hours, count(*) AS services,
           count(DISTINCT volunteer_key) AS volunteers
    FROM fact_service
    WHERE org_key IS NOT NULL
    GROUP BY org_key
)
SELECT t.org_key, o.name, r.prefecture_code, r.prefecture_name,
       t.hours, t.services, t.volunteers,
       rank() OVER (ORDER BY t.hours DESC) AS rank_in_province,
       rank() OVER (PARTITION BY r.prefecture_code ORDER BY t.hours DESC) AS rank_in_prefecture
FROM team t
LEFT JOIN dim_organization o ON o.org_key = t.org_key
LEFT JOIN dim_region r ON r.region_code = o.region_code
