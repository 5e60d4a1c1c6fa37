-- Question: How many volunteers does each prefecture have, and how many of them are active?
-- Reads: dim_volunteer, dim_region. Deleted persons are not counted.
SELECT r.prefecture_code,
       r.prefecture_name,
       COUNT(v.volunteer_key) AS volunteers,
       SUM(CASE WHEN v.status = 'active' THEN 1 ELSE 0 END) AS active
FROM dim_region r
LEFT JOIN dim_volunteer v
       ON v.region_code = r.region_code AND v.status <> 'deleted'
GROUP BY r.prefecture_code, r.prefecture_name
ORDER BY r.prefecture_code;
