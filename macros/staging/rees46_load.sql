{#
    DuckDB keeps the lines its CSV reader rejected in temporary tables of the
    reading connection. Called as a post-hook of base_rees46__events (same
    connection), this copies them into base_rees46__csv_rejects so the quarantine
    and the audit can read them: replaced on a full build, appended on an
    incremental one (a line already recorded is not recorded twice).
#}
{% macro rees46_persist_csv_rejects() %}
    {%- set target_table = this.incorporate(path={'identifier': 'base_rees46__csv_rejects'}) -%}
    {%- set has_reject_tables = execute and run_query(
        "select count(*) from duckdb_tables() where table_name = 'rees46_reject_errors'"
    ).columns[0].values()[0] > 0 -%}
    {%- set full_build = flags.FULL_REFRESH or not adapter.get_relation(
        this.database, this.schema, 'base_rees46__csv_rejects') -%}

    {%- set new_rejects -%}
        {% if has_reject_tables %}
            select
                scans.file_path as source_file,
                errors.line as source_line,
                errors.column_name,
                cast(errors.error_type as varchar) as error_type,
                errors.csv_line,
                errors.error_message,
                {{ rees46_loaded_at() }} as loaded_at
            from rees46_reject_errors as errors
            inner join rees46_reject_scans as scans
                on errors.scan_id = scans.scan_id and errors.file_id = scans.file_id
        {% else %}
            select
                cast(null as varchar) as source_file,
                cast(null as ubigint) as source_line,
                cast(null as varchar) as column_name,
                cast(null as varchar) as error_type,
                cast(null as varchar) as csv_line,
                cast(null as varchar) as error_message,
                cast(null as timestamp) as loaded_at
            where false
        {% endif %}
    {%- endset -%}

    {% if full_build %}
        create or replace table {{ target_table }} as {{ new_rejects }}
    {% else %}
        insert into {{ target_table }}
        select * from ({{ new_rejects }}) as new_rejects
        where not exists (
            select 1 from {{ target_table }} as known
            where known.source_file = new_rejects.source_file
                and known.source_line = new_rejects.source_line
        )
    {% endif %}
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
