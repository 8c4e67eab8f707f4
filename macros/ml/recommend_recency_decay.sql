{#
    The recommender's recency decay (docs block recommend_windows): an
    interaction on `date_column` counts 0.5 ^ (days before `end_column` /
    var recs_half_life_days). Shared by int_recommend_item_popularity and
    int_recommend_user_items, so popularity and user histories age alike.
#}
{% macro recommend_recency_decay(date_column, end_column) -%}
    pow(
        0.5,
        {{ dbt.datediff(date_column, end_column, 'day') }}
        / {{ var('recs_half_life_days') | float }}
    )
{%- endmacro %}
