{#
    A deterministic md5 key over columns, NULL-safe: the project's stand-in for
    dbt_utils.generate_surrogate_key (the package hub is not reachable here).
#}
{% macro surrogate_key(columns) %}
    {{- return(adapter.dispatch('surrogate_key', 'rees46')(columns)) -}}
{% endmacro %}

{% macro default__surrogate_key(columns) -%}
    md5(concat_ws('|'
        {%- for column in columns %},
        coalesce(cast({{ column }} as {{ dbt.type_string() }}), '_null_')
        {%- endfor %}
    ))
{%- endmacro %}
