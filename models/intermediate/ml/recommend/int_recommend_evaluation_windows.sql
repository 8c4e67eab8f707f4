{{ config(materialized='table', tags=['ml_evaluation']) }}

-- The rolling-origin evaluation's windows, one row (docs block
-- recommend_windows): var ml_evaluation_cutoffs test days, var
-- recs_evaluation_step_days apart (default var ml_evaluation_step_days), the
-- last one var recs_cutoff_date (default the last event date); each test
-- day's inputs are the days before it. The blend is chosen once, on the
-- validation day just before the first test day.
{%- set cutoff = var('recs_cutoff_date') %}
{%- set step = var('recs_evaluation_step_days',
                   var('ml_evaluation_step_days')) | int %}
with events as (

    select * from {{ ref('stg_rees46__events') }}

),

bounds as (

    select
        min(event_date) as first_event_date,
        max(event_date) as last_event_date
    from events

),

last_cutoff as (

    select
        first_event_date,
        last_event_date,
        {% if cutoff is none -%}
            last_event_date
        {%- else -%}
            cast('{{ cutoff }}' as date)
        {%- endif %} as last_cutoff_date
    from bounds

),

final as (

    select
        first_event_date,
        last_event_date,
        {{ recommend_evaluation_days('last_cutoff_date', step) }},
        cast({{ dbt.dateadd('day', 1, 'last_event_date') }} as date)
            as as_of_date
    from last_cutoff

)

select * from final
