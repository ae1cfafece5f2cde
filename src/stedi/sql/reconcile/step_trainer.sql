-- Where every valid step trainer reading went. read must equal kept + filtered + quarantined + duplicates.
with

readings as (
    select distinct sensorReadingTime, serialNumber, distanceFromObject from step_trainer_landing
)

select
    (select count(*) from step_trainer_trusted) as kept,
    -- readings of devices that belong to no curated customer
    (select count(*) from readings
     where serialNumber not in (select serialNumber from customers_curated)) as filtered,
    (select count(*) from step_trainer_quarantine) as quarantined,
    (select count(*) from step_trainer_landing) - (select count(*) from readings) as duplicates
