-- Organizations (not deleted) by prefecture and integrity status, with their status.
SELECT r.prefecture_code, r.prefecture_name,
       coalesce(o.credit_status, '未知') AS credit_status,
       count(*) AS organizations,
       count(*) FILTER (WHERE o.status = 'active') AS active,
       count(*) FILTER (WHERE o.status = 'suspended') AS suspended,
       count(*) FILTER (WHERE o.status = 'exited') AS exited
FROM dim_organization o
LEFT JOIN dim_region r ON r.region_code = o.region_code
WHERE o.status <> 'deleted'
GROUP BY r.prefecture_code, r.prefecture_name, coalesce(o.credit_status, '未知')
