{#
    Generic test: the combination of `combination_of_columns` is unique. The project's
    stand-in for dbt_utils.unique_combination_of_columns; use it as a compound primary key.
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    select
        {{ combination_of_columns | join(', ') }},
        count(*) as n_rows
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}
