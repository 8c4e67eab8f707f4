{#
    DuckDB keeps the lines its CSV reader rejected in temporary tables of the
    reading connection (the read_csv options rejects_table and rejects_scan).
    Called as a post-hook of the model that read the files (same connection), this
    copies them into the table `identifier` next to the model, so the quarantine
    and the audit can read them: replaced on a full build (always when `replace`),
    appended on an incremental one (a line already recorded is not recorded twice).
#}
{% macro persist_csv_rejects(identifier, errors_table, scans_table, replace=false) %}
    {%- set target_table = this.incorporate(path={'identifier': identifier}) -%}
    {%- set has_reject_tables = execute and run_query(
        "select count(*) from duckdb_tables() where table_name = '" ~ errors_table ~ "'"
    ).columns[0].values()[0] > 0 -%}
    {%- set full_build = replace or flags.FULL_REFRESH or not adapter.get_relation(
        this.database, this.schema, identifier) -%}

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
            from {{ errors_table }} as errors
            inner join {{ scans_table }} as scans
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
