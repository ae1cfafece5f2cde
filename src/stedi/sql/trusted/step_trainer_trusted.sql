-- step_trainer_trusted: readings of the devices of customers_curated customers; exact duplicates once.
-- Duplicates are removed after the filter, over the (fewer) curated customers' readings.
with

readings as (
    select sensorReadingTime, serialNumber, distanceFromObject
    from step_trainer_landing
),

devices as (
    select distinct serialNumber from customers_curated
)

select distinct
    readings.sensorReadingTime,
    readings.serialNumber,
    readings.distanceFromObject
from readings
where readings.serialNumber in (select serialNumber from devices)
