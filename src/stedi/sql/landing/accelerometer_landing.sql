-- accelerometer_landing: every record of the landed accelerometer files, as delivered.
-- landed_accelerometer is the landed JSON read with the columns and types of stedi.tables (the DDL contract).
select * from landed_accelerometer
