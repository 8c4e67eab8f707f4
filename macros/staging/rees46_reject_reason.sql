{#
    Why a parsed raw event is not a usable event, or NULL when it is. The first failing
    rule wins, in the order below; the rules and their vars are documented in
    models/staging/rees46/_rees46__docs.md ("Rejected rows").
#}
{% macro rees46_reject_reason() %}
    case
        when event_time is null then 'missing_or_unparsable_event_time'
        when event_time < cast('{{ var("rees46_min_valid_event_at") }}' as timestamp)
            then 'event_time_before_min_valid'
        when event_time > cast(current_timestamp as timestamp)
            + interval '{{ var("rees46_future_tolerance_hours") }} hours'
            then 'event_time_in_future'
        when event_type is null then 'missing_event_type'
        when event_type not in (
            {%- for event_type in var("rees46_accepted_event_types") -%}
                '{{ event_type }}'{{ ", " if not loop.last }}
            {%- endfor -%}
        ) then 'unknown_event_type'
        when product_id is null then 'missing_product_id'
        when user_id is null then 'missing_user_id'
        when user_session is null then 'missing_user_session'
        when price is null then 'missing_price'
        when price < 0 then 'negative_price'
        when price > {{ var("rees46_max_valid_price") }} then 'price_above_max_valid'
    end
{% endmacro %}
