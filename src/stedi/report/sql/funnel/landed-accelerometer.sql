-- needs: accelerometer_landing
-- Accelerometer readings as landed.
select count(*) as value from accelerometer_landing
