-- Question: What share of the organizations in each prefecture is registered (the rate the provincial measures push for)?
-- Reads: dim_organization, dim_region. Deleted and exited organizations are left out.
SELECT r.prefecture_code,
       r.prefecture_name,
       COUNT(*) AS organizations,
       SUM(CASE WHEN o.registration_status = 'registered' THEN 1 ELSE 0 END) AS registered,
       ROUND(100.0 * SUM(CASE WHEN o.registration_status = 'registered' THEN 1 ELSE 0 END) / COUNT(*), 1)
           AS registered_percent
FROM dim_organization o
JOIN dim_region r ON r.region_code = o.region_code
WHERE o.status NOT IN ('deleted', 'exited')
GROUP BY r.prefecture_code, r.prefecture_name
ORDER BY r.prefecture_code;
