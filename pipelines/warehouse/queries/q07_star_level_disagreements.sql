-- Question: How often does each system's own star rating disagree with the stars earned by deduplicated hours?
-- Reads: mart_star_level_comparison.
SELECT source,
       SUM(accounts) AS rated_accounts,
       SUM(CASE WHEN agrees THEN 0 ELSE accounts END) AS disagreements,
       SUM(CASE WHEN source_star_level > computed_star_level THEN accounts ELSE 0 END) AS source_rates_higher,
       SUM(CASE WHEN source_star_level < computed_star_level THEN accounts ELSE 0 END) AS source_rates_lower
FROM mart_star_level_comparison
GROUP BY source
ORDER BY source;
