-- Question: Which ten counties hold the most time-bank hours still available, and how much has been redeemed there?
-- Reads: mart_timebank_by_county (deposited = deduplicated service hours).
SELECT prefecture_name,
       region_name,
       volunteers,
       deposited_hours,
       redeemed_hours,
       available_hours
FROM mart_timebank_by_county
WHERE region_code IS NOT NULL
ORDER BY available_hours DESC, region_code
LIMIT 10;
