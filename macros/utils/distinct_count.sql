{#
    count(distinct ...) across columns of one row: how many distinct non-NULL
    values the given column expressions hold, as a bigint. Each value counts
    unless it is NULL or equal to an earlier one; for a handful of columns
    these comparisons are far cheaper than building a list per row.
#}
{% macro distinct_count(columns) -%}
    cast(
        {%- for column in columns %}
            (
                case
                    when {{ column }} is not null
                    {%- for earlier in columns[:loop.index0] %}
                        and {{ column }} is distinct from {{ earlier }}
                    {%- endfor %}
                        then 1
                    else 0
                end
            ){{ ' +' if not loop.last }}
        {%- endfor %}
        as bigint
    )
{%- endmacro %}
