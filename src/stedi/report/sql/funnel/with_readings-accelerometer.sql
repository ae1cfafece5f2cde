-- needs: accelerometer_trusted, customers_curated
-- Their phones' readings.
select count(*) as value from accelerometer_trusted
where "user" in (select email from customers_curated)
