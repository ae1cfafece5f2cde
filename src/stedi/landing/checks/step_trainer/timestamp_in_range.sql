-- action: quarantine
-- reason: sensorReadingTime before 2000-01-01 or more than a day in the future
select * from step_trainer
where sensorReadingTime < 946684800000
   or sensorReadingTime > epoch_ms(current_timestamp) + 86400000
