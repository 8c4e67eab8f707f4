-- One row per UTC day from var time_spine_start (inclusive) to var
-- time_spine_end (exclusive): the daily time spine MetricFlow joins metrics
-- to (cumulative windows, metric_time grains). Registered by time_spine: in
-- _semantic__models.yml.
with days as (

    {{ dbt.date_spine(
        'day',
        "cast('" ~ var('time_spine_start') ~ "' as date)",
        "cast('" ~ var('time_spine_end') ~ "' as date)",
    ) }}

),

final as (

    select cast(date_day as date) as date_day
    from days

)

select * from final
