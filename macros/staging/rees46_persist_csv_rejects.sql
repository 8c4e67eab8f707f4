{#
    DuckDB keeps the lines its CSV reader rejected in temporary tables of the reading
    connection. Called as a post-hook of base_rees46__events (same connection), this copies
    them into a real table so the rejected-rows model and the load audit can read them.
    For parquet input there is nothing to reject at parse time: the table is created empty.
#}
{% macro rees46_persist_csv_rejects() %}
    {%- set reads_csv = not rees46_events_path().endswith('.parquet') -%}
    create or replace table {{ this.database }}.{{ this.schema }}.base_rees46__csv_rejects as
    {% if reads_csv %}
        select
            scans.file_path as source_file,
            errors.line as source_line,
            errors.column_name,
            cast(errors.error_type as varchar) as error_type,
            errors.csv_line,
            errors.error_message
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
            cast(null as varchar) as error_message
        where false
    {% endif %}
{% endmacro %}

{# The raw-events glob: the REES46_EVENTS environment variable, else the rees46_events var. #}
{% macro rees46_events_path() %}
    {{- return(env_var('REES46_EVENTS', var('rees46_events'))) -}}
{% endmacro %}
