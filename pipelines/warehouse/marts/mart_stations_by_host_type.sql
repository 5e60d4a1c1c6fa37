-- Live stations by prefecture, host type and station type.
SELECT r.prefecture_code, r.prefecture_name, s.host_type, s.station_type,
       count(*) AS stations
FROM dim_station s
LEFT JOIN dim_region r ON r.region_code = s.region_code
GROUP BY r.prefecture_code, r.prefecture_name, s.host_type, s.station_type
