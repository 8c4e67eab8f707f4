{#
    Pre-hook of the dbt Python models. DuckDB keeps the table blocks it has
    read cached, up to memory_limit, and a Python model's pandas frames live
    in the same process beside them: at 67.5M events the two added up to
    12 GB. Lowering the limit evicts the cache and hands the memory back to
    the OS; the configured limit (or DuckDB's default) is then restored.

    Only when dbt runs one node at a time: with more threads another model's
    query could be running, and the low limit would make it fail.
#}
{% macro release_duckdb_memory() -%}
    {%- if model.language == 'python' and target.threads == 1 -%}
        set memory_limit = '64MB';
        {% if target.settings.memory_limit -%}
            set memory_limit = '{{ target.settings.memory_limit }}'
        {%- else -%}
            reset memory_limit
        {%- endif %}
    {%- endif -%}
{%- endmacro %}
