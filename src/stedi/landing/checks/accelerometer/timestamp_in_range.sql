-- action: quarantine
-- reason: timestamp before 2000-01-01 or more than a day in the future
select * from accelerometer
where "timestamp" < 946684800000
   or "timestamp" > epoch_ms(current_timestamp) + 86400000
