-- needs: machine_learning_curated
-- Accelerometer readings that found a pair: customer_key stands for one email, so a reading is told
-- apart by its values.
select count(*) as value from (
    select distinct customer_key, sensorReadingTime, x, y, z from machine_learning_curated
)
