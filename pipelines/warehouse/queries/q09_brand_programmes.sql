-- Question: How many projects, volunteers and hours do the brand programmes (三关爱, 暖冬行动, 西部计划, 青清河, 夜校) count?
-- Reads: mart_brand_programmes.
SELECT brand,
       projects,
       volunteers,
       services,
       hours
FROM mart_brand_programmes
ORDER BY hours DESC, brand;
