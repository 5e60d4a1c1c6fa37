-- Question: How many hours of service were given in each month of 2025, and by how many people?
-- Reads: fact_service (each service counted once across both systems).
SELECT EXTRACT(MONTH FROM service_date) AS month,
       COUNT(*) AS services,
       COUNT(DISTINCT volunteer_key) AS volunteers,
       SUM(hours) AS hours
FROM fact_service
WHERE service_date >= DATE '2025-01-01' AND service_date < DATE '2026-01-01'
GROUP BY EXTRACT(MONTH FROM service_date)
ORDER BY month;
