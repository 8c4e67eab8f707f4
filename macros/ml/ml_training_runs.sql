{#
    The registry records of every training model named in var ml_training_models
    (production runs) and every evaluation model named in var ml_evaluation_models
    (rolling-origin runs, selector `evaluate`), one row per run (see ml/registry.py
    for the columns).

    With a transactions-only source (var source other than rees46), the models
    of var ml_click_stream_models are disabled and left out.

    An evaluation model that has not been built (a production build excludes
    tag:ml_evaluation) is left out: its runs of earlier builds are already in the
    incremental registry tables. With no model at all, an empty relation of the
    same shape.
#}
{% macro ml_training_runs() %}
    {%- set columns = [
        ('run_id', 'varchar'),
        ('model_name', 'varchar'),
        ('run_kind', 'varchar'),
        ('status', 'varchar'),
        ('status_reason', 'varchar'),
        ('trained_at', 'timestamp'),
        ('train_start', 'timestamp'),
        ('train_end', 'timestamp'),
        ('label_start', 'timestamp'),
        ('label_end', 'timestamp'),
        ('n_train', 'bigint'),
        ('n_test', 'bigint'),
        ('params_json', 'varchar'),
        ('library_versions_json', 'varchar'),
        ('metrics_json', 'varchar'),
        ('feature_importance_json', 'varchar'),
        ('drift_json', 'varchar'),
        ('calibration_json', 'varchar'),
        ('is_below_baseline', 'boolean'),
    ] -%}
    {%- set relations = [] -%}
    {%- set skipped = [] if var('source') == 'rees46' else var('ml_click_stream_models') -%}
    {%- for training_model in var('ml_training_models') if training_model not in skipped %}
        {%- do relations.append(ref(training_model)) -%}
    {%- endfor %}
    {%- for evaluation_model in var('ml_evaluation_models', [])
        if evaluation_model not in skipped %}
        {%- set relation = ref(evaluation_model) -%}
        {%- if not execute or load_relation(relation) is not none -%}
            {%- do relations.append(relation) -%}
        {%- endif -%}
    {%- endfor %}
    {%- if relations | length == 0 %}
        select
            {%- for name, type in columns %}
            cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
            {%- endfor %}
        where false
    {%- else %}
        {%- for relation in relations %}
            select
                {%- for name, type in columns %}
                cast({{ name }} as {{ type }}) as {{ name }}{{ "," if not loop.last }}
                {%- endfor %}
            from {{ relation }}
            {% if not loop.last %}union all{% endif %}
        {%- endfor %}
    {%- endif %}
{% endmacro %}
