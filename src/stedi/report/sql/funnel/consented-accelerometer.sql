-- needs: accelerometer_trusted
-- Their phones' readings (exact duplicates once).
select count(*) as value from accelerometer_trusted
