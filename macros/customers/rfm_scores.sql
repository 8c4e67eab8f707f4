{#
    The RFM scores of fct_customer_rfm, shared with the ML features that score
    customers at a snapshot (int_customer_cluster_features).

    rfm_quintile_score: 1..5 by the share of customers whose value is no better
    than this one's (ties included), so equal values share a score.
    rfm_frequency_score: fixed order-count floors (var rfm_frequency_score_floors),
    not quintiles: most buyers order once.
#}
{% macro rfm_quintile_score(no_better, customers_count) -%}
    case
        {%- for score in range(1, 5) %}
            when 5 * {{ no_better }} <= {{ score }} * {{ customers_count }}
                then {{ score }}
        {%- endfor %}
        else 5
    end
{%- endmacro %}

{% macro rfm_frequency_score(orders) -%}
    case
        {%- for floor in var('rfm_frequency_score_floors') | reverse %}
            when {{ orders }} >= {{ floor }} then {{ loop.revindex }}
        {%- endfor %}
        else 1
    end
{%- endmacro %}
