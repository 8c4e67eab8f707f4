{#
    Generic test, severity warn: returns every day of `date_column` with fewer rows than
    var volume_anomaly_min_share (default 0.5) times the median of the previous
    `trailing_days` days. Days come from a gap-free calendar between the first and the
    last day, so a missing day counts as 0 rows. A day needs `min_history_days` earlier
    days to be judged. See docs block volume_anomaly (models/marts/quality).
#}
{% test volume_anomaly(model, date_column, trailing_days=7, min_history_days=3, min_share=none) %}
    {{ config(severity='warn') }}
    {%- set share = min_share if min_share is not none
        else var('volume_anomaly_min_share', 0.5) -%}
    {{ adapter.dispatch('test_volume_anomaly')(
        model, date_column, trailing_days, min_history_days, share) }}
{% endtest %}

{% macro default__test_volume_anomaly(model, date_column, trailing_days, min_history_days, min_share) %}
    with daily as (
        select
            cast({{ date_column }} as date) as row_date,
            count(*) as row_count
        from {{ model }}
        where {{ date_column }} is not null
        group by 1
    ),
    calendar as (
        select cast(generated as date) as row_date
        from generate_series(
            (select min(row_date) from daily),
            (select max(row_date) from daily),
            interval 1 day
        ) as days(generated)
    ),
    filled as (
        select
            calendar.row_date,
            coalesce(daily.row_count, 0) as row_count
        from calendar
        left join daily on calendar.row_date = daily.row_date
    ),
    judged as (
        select
            row_date,
            row_count,
            count(*) over previous_days as history_days,
            median(row_count) over previous_days as trailing_median
        from filled
        window previous_days as (
            order by row_date
            rows between {{ trailing_days | int }} preceding and 1 preceding
        )
    )
    select
        row_date,
        row_count,
        trailing_median,
        {{ min_share }} as min_share
    from judged
    where history_days >= {{ min_history_days | int }}
        and row_count < {{ min_share }} * trailing_median
{% endmacro %}
