{#
    Generic test: the model has as many rows as `compare_model` (optionally filtered).
    Used for accounting identities between layers.
#}
{% test equal_row_count(model, compare_model, where=none, compare_where=none) %}
    with model_rows as (
        select count(*) as n from {{ model }}
        {%- if where %} where {{ where }}{% endif %}
    ),
    compare_rows as (
        select count(*) as n from {{ compare_model }}
        {%- if compare_where %} where {{ compare_where }}{% endif %}
    )
    select model_rows.n as model_rows, compare_rows.n as compare_rows
    from model_rows
    cross join compare_rows
    where model_rows.n != compare_rows.n
{% endtest %}
