-- needs: machine_learning_curated
-- Histograms of x, y, z and distanceFromObject in the ML table: {bins} equal bins from each one's
-- minimum to its maximum, counted by the engine.
with

measures as (
    unpivot (select x, y, z, cast(distanceFromObject as double) as distanceFromObject
             from machine_learning_curated)
    on x, y, z, distanceFromObject
    into name measure value reading
),

bounds as (
    select measure, min(reading) as low, max(reading) as high
    from measures
    group by measure
),

binned as (
    select
        measures.measure,
        bounds.low,
        greatest(bounds.high - bounds.low, 1e-9) / {bins} as width,
        least(floor((measures.reading - bounds.low) / greatest(bounds.high - bounds.low, 1e-9) * {bins}),
              {bins} - 1) as bin
    from measures
    inner join bounds on measures.measure = bounds.measure
)

select measure, bin, low + bin * width as bin_start, low + (bin + 1) * width as bin_end, count(*) as readings
from binned
group by all
order by measure, bin
