-- Question: Which ten teams gave the most hours of service, and where are they?
-- Reads: fact_service, dim_organization, dim_region.
SELECT o.org_key,
       o.name,
       r.prefecture_name,
       r.region_name,
       SUM(f.hours) AS hours,
       COUNT(DISTINCT f.volunteer_key) AS volunteers
FROM fact_service f
JOIN dim_organization o ON o.org_key = f.org_key
LEFT JOIN dim_region r ON r.region_code = o.region_code
GROUP BY o.org_key, o.name, r.prefecture_name, r.region_name
ORDER BY hours DESC, o.org_key
LIMIT 10;
