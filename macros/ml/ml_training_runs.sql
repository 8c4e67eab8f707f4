{#
    The registry records of every training model named in var ml_training_models,
    one row per run (see ml/registry.py for the columns). With no training model
    yet, an empty relation of the same shape.
#}
{% macro ml_training_runs() %}
    {%- set training_models = var('ml_training_models') -%}
    {%- if training_models | length == 0 %}
        select
            cast(null as varchar) as run_id,
            cast(null as varchar) as model_name,
            cast(null as timestamp) as trained_at,
            cast(null as timestamp) as train_start,
            cast(null as timestamp) as train_end,
            cast(null as timestamp) as label_start,
            cast(null as timestamp) as label_end,
            cast(null as bigint) as n_train,
            cast(null as bigint) as n_test,
            cast(null as varchar) as params_json,
            cast(null as varchar) as library_versions_json,
            cast(null as varchar) as metrics_json,
            cast(null as varchar) as feature_importance_json,
            cast(null as boolean) as is_below_baseline
        where false
    {%- else %}
        {%- for training_model in training_models %}
            select
                run_id,
                model_name,
                trained_at,
                train_start,
                train_end,
                label_start,
                label_end,
                n_train,
                n_test,
                params_json,
                library_versions_json,
                metrics_json,
                feature_importance_json,
                is_below_baseline
            from {{ ref(training_model) }}
            {% if not loop.last %}union all{% endif %}
        {%- endfor %}
    {%- endif %}
{% endmacro %}
