{# The REES46 csv rejects, persisted by base_rees46__events (see persist_csv_rejects). #}
{% macro rees46_persist_csv_rejects() %}
    {{- persist_csv_rejects(
        'base_rees46__csv_rejects', 'rees46_reject_errors', 'rees46_reject_scans') -}}
{% endmacro %}

{# The raw-events glob: the REES46_EVENTS environment variable, else the rees46_events var. #}
{% macro rees46_events_path() %}
    {{- return(env_var('REES46_EVENTS', var('rees46_events'))) -}}
{% endmacro %}

{# When this dbt invocation started (UTC): stamps every row a load adds. #}
{% macro rees46_loaded_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}

{#
    Quoted, comma-separated names of the raw files already loaded: parsed rows in
    base_rees46__events, or lines in the csv rejects. Empty when nothing is loaded.
#}
{% macro rees46_loaded_files() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set rejects = adapter.get_relation(
        this.database, this.schema, 'base_rees46__csv_rejects') -%}
    {%- set sql -%}
        select distinct source_file from {{ this }}
        {% if rejects %}union select distinct source_file from {{ rejects }}{% endif %}
    {%- endset -%}
    {%- set quoted = [] -%}
    {%- for file in run_query(sql).columns[0].values() -%}
        {%- do quoted.append("'" ~ file | replace("'", "''") ~ "'") -%}
    {%- endfor -%}
    {{- return(quoted | join(', ')) -}}
{% endmacro %}

{#
    In an incremental run of a staging model, the filter keeping only rows loaded
    after the latest load the model has already processed; nothing otherwise.
#}
{% macro rees46_loaded_after_this() %}
    {%- if is_incremental() -%}
        where loaded_at > (
            select coalesce(max(loaded_at), cast('1900-01-01' as timestamp))
            from {{ this }}
        )
    {%- endif -%}
{% endmacro %}
