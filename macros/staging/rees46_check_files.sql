{#
    Run before the raw files are parsed (pre-hook of base_rees46__events). A file that is
    unusable as a whole stops the build with an error naming the file: no match for the
    glob, an empty file, or a header that is not the REES46 header. Without this check a
    missing header would silently turn the first event into a header.
#}
{% macro rees46_check_files() %}
    {%- if execute -%}
        {%- set path = rees46_events_path() -%}
        {%- set expected = [
            'event_time', 'event_type', 'product_id', 'category_id', 'category_code',
            'brand', 'price', 'user_id', 'user_session',
        ] -%}
        {%- set files = run_query("select file from glob('" ~ path ~ "') order by file").columns[0].values() -%}
        {%- if files | length == 0 -%}
            {{ exceptions.raise_compiler_error(
                "No raw event files match '" ~ path ~ "' (set REES46_EVENTS or the rees46_events var).") }}
        {%- endif -%}
        {%- for file in files -%}
            {%- if file.endswith('.parquet') -%}
                {%- set found = run_query(
                    "select name from parquet_schema('" ~ file ~ "') where num_children is null"
                ).columns[0].values() | list -%}
                {%- set missing = expected | reject('in', found) | list -%}
                {%- if missing -%}
                    {{ exceptions.raise_compiler_error(
                        "Raw file " ~ file ~ " lacks the REES46 columns " ~ missing | join(', ')) }}
                {%- endif -%}
            {%- else -%}
                {#- parallel = false: with preserve_insertion_order off (profiles.yml), a
                    parallel scan's `limit 1` may return any line of a large file. -#}
                {%- set first_line = run_query(
                    "select line from read_csv('" ~ file ~ "', header = false, auto_detect = false,"
                    ~ " columns = {'line': 'VARCHAR'}, delim = '\\0', quote = '', escape = '',"
                    ~ " strict_mode = false, ignore_errors = true, parallel = false) limit 1"
                ).columns[0].values() -%}
                {%- if first_line | length == 0 -%}
                    {{ exceptions.raise_compiler_error("Raw file " ~ file ~ " is empty: no header and no rows.") }}
                {%- endif -%}
                {%- set header = first_line[0] | replace('\r', '') | trim -%}
                {%- if header != expected | join(',') -%}
                    {{ exceptions.raise_compiler_error(
                        "Raw file " ~ file ~ " does not start with the REES46 header. Expected '"
                        ~ expected | join(',') ~ "', found '" ~ header[:200] ~ "'.") }}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{% endmacro %}
