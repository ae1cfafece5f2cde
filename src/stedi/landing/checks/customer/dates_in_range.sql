-- action: warn
-- reason: registrationDate or lastUpdateDate before 2000-01-01 or more than a day in the future
select * from customer
where registrationDate < 946684800000 or lastUpdateDate < 946684800000
   or registrationDate > epoch_ms(current_timestamp) + 86400000
   or lastUpdateDate > epoch_ms(current_timestamp) + 86400000
