{#
    A deterministic md5 key over columns, NULL-safe: the project's stand-in for
    dbt_utils.generate_surrogate_key (the package hub is not reachable here).
    Stored as a UUID, the md5's 16 bytes: the same hex digits as md5 text, but a
    fixed-width value that groups, joins and sorts like an integer and takes half
    the space, which matters for the 67M-row event tables.
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

{% macro duckdb__surrogate_key(columns) -%}
    cast({{ default__surrogate_key(columns) }} as uuid)
{%- endmacro %}
