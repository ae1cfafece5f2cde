-- needs: machine_learning_curated
-- Step trainer readings that found a pair (a device two customers share: once per owner).
select count(*) as value from (
    select distinct customer_key, sensorReadingTime, distanceFromObject from machine_learning_curated
)
