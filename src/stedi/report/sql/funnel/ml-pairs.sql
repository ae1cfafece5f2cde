-- needs: machine_learning_curated
-- The ML table's rows: one per pair of readings.
select count(*) as value from machine_learning_curated
