{#
    Shared by the purchase-propensity feature models
    (models/intermediate/ml/propensity), so both split and count history the same
    way: docs blocks propensity_split_rule, propensity_user_prior_sessions,
    propensity_hours_since_previous_session, propensity_user_prior_purchases and
    propensity_user_prior_orders.
#}

{#
    One row: data_end_at, the last event, and cutoff_at, var ml_cutoff_date or,
    when null, the last event date minus var ml_label_horizon_days. Reads the
    two columns it needs straight from the events.
#}
{% macro propensity_bounds() %}
    {%- set test_days = var('ml_label_horizon_days') | int %}
    {%- set cutoff = var('ml_cutoff_date') %}
    select
        max(event_at) as data_end_at,
        {% if cutoff is none -%}
            cast(
                {{ dbt.dateadd('day', -test_days, 'max(event_date)') }}
                as timestamp
            )
        {%- else -%}
            cast('{{ cutoff }}' as timestamp)
        {%- endif %} as cutoff_at
    from {{ ref('int_events_sessionized') }}
{% endmacro %}

{#
    The user's purchases before each row's session started: one row per `key`
    of relation `rows` (columns `key`, user_id, session_started_at) with
    user_prior_purchases (purchase events strictly before session_started_at)
    and user_prior_orders (sessions whose first purchase is strictly before
    it), from relation `purchases` (session_id, user_id, event_at).

    One running sum per user over a timeline of the rows, the purchases and
    each session's first purchase, instead of joining every row to all the
    user's earlier purchases (quadratic for heavy buyers). A row sorts before
    the purchases of the same instant, so those are not counted.
#}
{% macro propensity_user_history(rows, key, purchases='purchases') %}
    select
        row_key as {{ key }},
        cast(
            sum(purchase_events) over user_so_far as bigint
        ) as user_prior_purchases,
        cast(
            sum(purchase_sessions) over user_so_far as bigint
        ) as user_prior_orders
    from (
        select
            {{ key }} as row_key,
            user_id,
            session_started_at as happened_at,
            0 as is_purchase,
            0 as purchase_events,
            0 as purchase_sessions
        from {{ rows }}
        union all
        select
            null as row_key,
            user_id,
            event_at as happened_at,
            1 as is_purchase,
            1 as purchase_events,
            0 as purchase_sessions
        from {{ purchases }}
        union all
        select
            null as row_key,
            user_id,
            min(event_at) as happened_at,
            1 as is_purchase,
            0 as purchase_events,
            1 as purchase_sessions
        from {{ purchases }}
        group by session_id, user_id
    ) as user_timeline
    window user_so_far as (
        partition by user_id
        order by happened_at asc, is_purchase asc
        rows between unbounded preceding and current row
    )
    qualify row_key is not null
{% endmacro %}

{#
    Two columns of a select over sessions (fct_sessions rows): the user's
    sessions that started before this one, and the hours since the previous
    one started. Every session of the user in the relation counts, so select
    from all of them and filter afterwards.
#}
{% macro propensity_session_history_columns() %}
        row_number() over (
            partition by user_id
            order by session_started_at asc, session_id asc
        ) - 1 as user_prior_sessions,
        {{ dbt.datediff(
            'lag(session_started_at) over (
                partition by user_id
                order by session_started_at asc, session_id asc
            )',
            'session_started_at',
            'second',
        ) }} / 3600.0 as hours_since_previous_session
{%- endmacro %}
