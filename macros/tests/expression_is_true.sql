{#
    Generic test: every row satisfies `expression` (optionally only rows matching
    `where`). The project's stand-in for dbt_utils.expression_is_true.
#}
{% test expression_is_true(model, expression, where=none) %}
    select *
    from {{ model }}
    where not ({{ expression }})
    {%- if where %} and ({{ where }}){% endif %}
{% endtest %}
