-- machine_learning_curated: each step trainer reading paired with the accelerometer reading(s) of the
-- customer who owns the device, taken at the same time. No direct identifier: the customer appears as
-- customer_key, a keyed pseudonym (pseudonyms: email -> HMAC-SHA256 under the run's secret key, held in
-- memory only), and the device's serial number is left out.
-- The pairing goes device -> owner -> owner's phone: joining on the timestamp alone would pair one
-- customer's device with another customer's phone whenever two customers share a timestamp.
with

step_readings as (
    select * from step_trainer_trusted
),

owners as (
    select serialNumber, email from customers_curated
),

phone_readings as (
    select * from accelerometer_trusted
)

select
    pseudonyms.customer_key,
    step_readings.sensorReadingTime,
    step_readings.distanceFromObject,
    phone_readings.x,
    phone_readings.y,
    phone_readings.z
from step_readings
inner join owners
    on step_readings.serialNumber = owners.serialNumber
inner join phone_readings
    on phone_readings."user" = owners.email
    and phone_readings."timestamp" = step_readings.sensorReadingTime
inner join pseudonyms
    on pseudonyms.email = owners.email
