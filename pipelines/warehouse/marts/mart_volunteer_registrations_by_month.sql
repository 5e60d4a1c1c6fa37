-- New registrations per prefecture and month, with the running total.
WITH monthly AS (
    SELECT r.prefecture_code, r.prefecture_name,
           strftime(v.registered_on, '%Y-%m') AS month,
           count(*) AS new_volunteers
    FROM dim_volunteer v
    LEFT JOIN dim_region r ON r.region_code = v.region_code
    WHERE v.status <> 'deleted' AND v.registered_on IS NOT NULL
    GROUP BY r.prefecture_code, r.prefecture_name, strftime(v.registered_on, '%Y-%m')
)
SELECT prefecture_code, prefecture_name, month, new_volunteers,
       sum(new_volunteers) OVER (PARTITION BY prefecture_code ORDER BY month) AS cumulative_volunteers
FROM monthly
