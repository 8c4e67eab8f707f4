{# The Online Retail II csv glob: the ONLINE_RETAIL_INVOICES environment variable, else the var. #}
{% macro online_retail_invoices_path() %}
    {{- return(env_var('ONLINE_RETAIL_INVOICES', var('online_retail_invoices'))) -}}
{% endmacro %}

{# The columns of an Online Retail II export, in order; `sheet` may follow them. #}
{% macro online_retail_columns() %}
    {{- return([
        'Invoice', 'StockCode', 'Description', 'Quantity', 'InvoiceDate', 'Price',
        'Customer ID', 'Country',
    ]) -}}
{% endmacro %}

{#
    Pre-hook of base_online_retail__invoice_lines. A file that is unusable as a whole
    stops the build with an error naming it: no file matches the glob, an empty file, a
    header other than the eight Online Retail II columns (optionally followed by
    `sheet`), or files whose headers differ (DuckDB's reader takes the columns from the
    first file of the glob, and a reject table cannot be combined with union_by_name).
#}
{% macro online_retail_check_files() %}
    {%- if execute -%}
        {%- set path = online_retail_invoices_path() -%}
        {%- set expected = online_retail_columns() | join(',') -%}
        {%- set files = run_query(
            "select file from glob('" ~ path ~ "') order by file").columns[0].values() -%}
        {%- if files | length == 0 -%}
            {{ exceptions.raise_compiler_error(
                "No Online Retail II files match '" ~ path
                ~ "' (set ONLINE_RETAIL_INVOICES or the online_retail_invoices var).") }}
        {%- endif -%}
        {%- set headers = [] -%}
        {%- for file in files -%}
            {%- if not file.endswith('.csv') -%}
                {{ exceptions.raise_compiler_error(
                    "Online Retail II file " ~ file ~ " is not a .csv file. Export each sheet"
                    ~ " of the xlsx workbook to csv (see _online_retail__docs.md).") }}
            {%- endif -%}
            {#- parallel = false: a parallel scan's `limit 1` may return any line. -#}
            {%- set first_line = run_query(
                "select line from read_csv('" ~ file ~ "', header = false, auto_detect = false,"
                ~ " columns = {'line': 'VARCHAR'}, delim = '\\0', quote = '', escape = '',"
                ~ " strict_mode = false, ignore_errors = true, parallel = false) limit 1"
            ).columns[0].values() -%}
            {%- if first_line | length == 0 -%}
                {{ exceptions.raise_compiler_error(
                    "Online Retail II file " ~ file ~ " is empty: no header and no rows.") }}
            {%- endif -%}
            {%- set header = first_line[0] | replace('\r', '') | replace('\ufeff', '') | trim -%}
            {%- if header not in [expected, expected ~ ',sheet'] -%}
                {{ exceptions.raise_compiler_error(
                    "Online Retail II file " ~ file ~ " does not start with the header '"
                    ~ expected ~ "' (optionally followed by ',sheet'); found '"
                    ~ header[:200] ~ "'.") }}
            {%- endif -%}
            {%- do headers.append(header) -%}
        {%- endfor -%}
        {%- if headers | unique | list | length > 1 -%}
            {{ exceptions.raise_compiler_error(
                "The Online Retail II files matching '" ~ path ~ "' have different headers"
                ~ " (with and without the sheet column); load them in separate globs"
                ~ " or give them all the same columns.") }}
        {%- endif -%}
    {%- endif -%}
    select 1
{% endmacro %}

{#
    Non-empty text as an integer, when it is an integral number ('12417.0' -> 12417);
    NULL for empty or non-integral text.
#}
{% macro online_retail_integer(column) -%}
    case
        when abs(try_cast({{ column }} as double)) < 1e15
            and try_cast({{ column }} as double)
            = floor(try_cast({{ column }} as double))
            then cast(try_cast({{ column }} as double) as bigint)
    end
{%- endmacro %}
