-- The baseline in plain DuckDB: the five jobs as one SQL script a user writes in an afternoon, over the
-- landing JSON, tables in memory (nothing written). What stedi computes with its default consent policy
-- (`any`: every reading of a consenting customer). bench/run.py replaces $DATA with the landing folder
-- (customer/, accelerometer/, step_trainer/ as `stedi generate` writes them).

-- Job 1: the latest record of each customer, kept if it consents to research.
create table customer_trusted as
select * from (
    select * from read_json('$DATA/customer/**/*.json', format = 'newline_delimited')
    where email is not null
    qualify row_number() over (partition by email order by lastUpdateDate desc) = 1
)
where shareWithResearchAsOfDate is not null;

-- Job 2: the readings of those customers, exact duplicates once.
create table accelerometer_trusted as
select distinct a."user", a."timestamp", a.x, a.y, a.z
from read_json('$DATA/accelerometer/**/*.json', format = 'newline_delimited') a
join customer_trusted c on a."user" = c.email;

-- Job 3: trusted customers with readings.
create table customers_curated as
select * from customer_trusted
where email in (select "user" from accelerometer_trusted);

-- Job 4: the readings of those customers' devices, exact duplicates once.
create table step_trainer_trusted as
select distinct s.sensorReadingTime, s.serialNumber, s.distanceFromObject
from read_json('$DATA/step_trainer/**/*.json', format = 'newline_delimited') s
join customers_curated c on s.serialNumber = c.serialNumber;

-- Job 5: each device reading with its owner's phone readings at the same time; a pseudonym-like key
-- instead of the email.
create table machine_learning_curated as
select md5(c.email) as customer_key, s.sensorReadingTime, s.distanceFromObject, a.x, a.y, a.z
from step_trainer_trusted s
join customers_curated c on s.serialNumber = c.serialNumber
join accelerometer_trusted a on a."user" = c.email and a."timestamp" = s.sensorReadingTime;

select (select count(*) from customer_trusted) as customer_trusted,
       (select count(*) from accelerometer_trusted) as accelerometer_trusted,
       (select count(*) from customers_curated) as customers_curated,
       (select count(*) from step_trainer_trusted) as step_trainer_trusted,
       (select count(*) from machine_learning_curated) as machine_learning_curated;
