-- Question: Which counties have no live service station, point or post?
-- Reads: dim_region, dim_station (deleted stations are not in it).
SELECT r.prefecture_name,
       r.region_code,
       r.region_name
FROM dim_region r
LEFT JOIN dim_station s ON s.region_code = r.region_code
WHERE s.station_key IS NULL
ORDER BY r.region_code;
