-- customer_landing: every record of the landed customer files, as delivered.
-- landed_customer is the landed JSON read with the columns and types of stedi.tables (the DDL contract).
select * from landed_customer
