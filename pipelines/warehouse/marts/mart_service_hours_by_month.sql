-- Deduplicated service hours by month, prefecture and category.
SELECT strftime(f.service_date, '%Y-%m') AS month,
       r.prefecture_code, r.prefecture_name, f.category,
       count(*) AS services,
       count(DISTINCT f.volunteer_key) AS volunteers,
       sum(f.hours) AS hours
FROM fact_service f
LEFT JOIN dim_region r ON r.region_code = f.region_code
GROUP BY strftime(f.service_date, '%Y-%m'), r.prefecture_code, r.prefecture_name, f.category
