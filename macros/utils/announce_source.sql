{#
    Logs, for a transactions-only source, which models are disabled (the
    "click-stream" folders in dbt_project.yml), so a missing mart is never a
    surprise. Called by int_purchases, which every build of the source runs
    (a project hook would add a node to every build's counts).
#}
{% macro announce_source() %}
    {%- if execute and var('source') != 'rees46' -%}
        {{ log(
            "source " ~ var('source') ~ ": transactions only. The models that need "
            ~ "click-stream events are disabled: sessions, funnels, product, brand and "
            ~ "category marts, data-quality marts, KPI alerts, propensity, "
            ~ "recommendations, fraud, pricing and customer clusters (docs/sources.md).",
            info=true
        ) }}
    {%- endif -%}
{% endmacro %}
