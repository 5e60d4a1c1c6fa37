-- Live stations per county, every county listed; has_station = false: a county with none.
SELECT r.prefecture_code, r.prefecture_name, r.region_code, r.region_name,
       count(s.station_key) AS stations,
       count(s.station_key) FILTER (WHERE s.station_type = '站') AS type_station,
       count(s.station_key) FILTER (WHERE s.station_type = '点') AS type_point,
       count(s.station_key) FILTER (WHERE s.station_type = '岗') AS type_post,
       count(s.station_key) > 0 AS has_station
FROM dim_region r
LEFT JOIN dim_station s ON s.region_code = r.region_code
GROUP BY r.prefecture_code, r.prefecture_name, r.region_code, r.region_name
