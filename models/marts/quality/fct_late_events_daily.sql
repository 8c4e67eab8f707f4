-- One row per event date with late events: how many staged events of that
-- day are missing from the behaviour marts (fct_late_events), and the share
-- of the day's staged events they are, so a day's figures can be read with
-- their known gap. Empty after a full refresh.
with late_events as (

    select * from {{ ref('fct_late_events') }}

),

staged_events as (

    select * from {{ ref('stg_rees46__events') }}

),

late_daily as (

    select
        event_date,
        count(*) as late_events,
        count(*) filter (where event_type = 'purchase') as late_purchases,
        coalesce(
            sum(price) filter (where event_type = 'purchase'), 0
        ) as late_revenue,
        count(distinct source_file) as source_files,
        min(lateness_hours) as min_lateness_hours,
        max(lateness_hours) as max_lateness_hours
    from late_events
    group by 1

),

staged_daily as (

    select
        event_date,
        count(*) as staged_events
    from staged_events
    where event_date in (select late_daily.event_date from late_daily)
    group by 1

),

final as (

    select
        late_daily.event_date,
        cast(late_daily.late_events as integer) as late_events,
        cast(late_daily.late_purchases as integer) as late_purchases,
        cast(late_daily.late_revenue as decimal(18, 2)) as late_revenue,
        cast(late_daily.source_files as integer) as source_files,
        late_daily.min_lateness_hours,
        late_daily.max_lateness_hours,
        cast(staged_daily.staged_events as integer) as staged_events,
        cast(late_daily.late_events as double)
        / staged_daily.staged_events as late_share
    from late_daily
    inner join staged_daily
        on late_daily.event_date = staged_daily.event_date

)

select * from final
