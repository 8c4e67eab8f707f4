{{ config(materialized='table') }}

-- The recommender's time windows, one row (docs block recommend_windows).
-- Evaluation trains on the days before cutoff_date and tests on the
-- interactions of cutoff_date itself; the blend is chosen the same way one
-- day earlier, on validation_date; production uses every day and
-- recommends to the users active in the last var recs_active_days days.
{%- set cutoff = var('recs_cutoff_date') %}
{%- set active_days = var('recs_active_days') | int %}
with events as (

    select * from {{ ref('stg_rees46__events') }}

),

bounds as (

    select
        min(event_date) as first_event_date,
        max(event_date) as last_event_date
    from events

),

cutoffs as (

    select
        first_event_date,
        last_event_date,
        {% if cutoff is none -%}
            cast({{ dbt.dateadd('day', -1, 'last_event_date') }} as date)
        {%- else -%}
            cast('{{ cutoff }}' as date)
        {%- endif %} as cutoff_date
    from bounds

),

final as (

    select
        first_event_date,
        last_event_date,
        cutoff_date,
        cast(
            {{ dbt.dateadd('day', -1, 'cutoff_date') }} as date
        ) as validation_date,
        cast(
            {{ dbt.dateadd('day', 1 - active_days, 'last_event_date') }}
            as date
        ) as active_start_date,
        cast({{ dbt.dateadd('day', 1, 'last_event_date') }} as date)
            as as_of_date
    from cutoffs

)

select * from final
