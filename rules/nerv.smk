# The NeRV family (nvd.models.nerv): NeRV, E-NeRV and HNeRV, each plain and boosted, trained
# per video for regression, inpainting and interpolation, and the tables of each dataset that
# runs it (datasets.<name>.families lists nerv). {nerv_model} names a model folder: one of the
# six model names, with its size when nerv.model_sizes lists several (hnerv_boost_3M).

NERV_RUN = LAYOUT.run_files("{nerv_model}")
NERV_INPAINT = LAYOUT.run_files("{nerv_model}_inpaint")
NERV_INTERPOLATE = LAYOUT.run_files("{nerv_model}_interpolate")


rule nerv_train:
    input:
        frames=STORES["frames"],
    output:
        model=NERV_RUN["model"],
        log=NERV_RUN["log"],
    params:
        sections=nerv_params(),
        work_dir=NERV_RUN["work"],
        code=code_version("nerv"),
    resources:
        gpu=section_gpus("nerv"),
    threads: 2
    log:
        "logs/{dataset}/{video}/{nerv_model}/nerv_train.log",
    benchmark:
        "benchmarks/{dataset}/{video}/{nerv_model}/nerv_train.tsv"
    conda:
        "../envs/nerv.yaml"
    script:
        "../scripts/nerv_train.py"


rule nerv_evaluate:
    input:
        frames=STORES["frames"],
        model=NERV_RUN["model"],
        log=NERV_RUN["log"],
    output:
        report(
            directory(NERV_RUN["eval"]),
            patterns=["{name}.mp4"],
            caption="../report/nerv.rst",
            category="NeRV family",
            subcategory="{dataset}/{video} ({nerv_model})",
        ),
    params:
        lpips=WEIGHTS.lpips,
        device=train_device("nerv"),
        code=code_version("nerv_evaluation"),
    resources:
        gpu=section_gpus("nerv"),
    threads: 2
    log:
        "logs/{dataset}/{video}/{nerv_model}/nerv_evaluate.log",
    benchmark:
        "benchmarks/{dataset}/{video}/{nerv_model}/nerv_evaluate.tsv"
    conda:
        "../envs/nerv.yaml"
    script:
        "../scripts/nerv_evaluate.py"


rule nerv_inpaint:
    input:
        frames=STORES["frames"],
    output:
        model=NERV_INPAINT["model"],
        log=NERV_INPAINT["log"],
        eval=directory(NERV_INPAINT["eval"]),
    params:
        sections=nerv_params("nerv_inpaint"),
        work_dir=NERV_INPAINT["work"],
        lpips=WEIGHTS.lpips,
        code=code_version("nerv_evaluation"),
    resources:
        gpu=section_gpus("nerv"),
    threads: 2
    log:
        "logs/{dataset}/{video}/{nerv_model}/nerv_inpaint.log",
    benchmark:
        "benchmarks/{dataset}/{video}/{nerv_model}/nerv_inpaint.tsv"
    conda:
        "../envs/nerv.yaml"
    script:
        "../scripts/nerv_inpaint.py"


rule nerv_interpolate:
    input:
        frames=STORES["frames"],
    output:
        model=NERV_INTERPOLATE["model"],
        log=NERV_INTERPOLATE["log"],
        eval=directory(NERV_INTERPOLATE["eval"]),
    params:
        sections=nerv_params("nerv_interpolate"),
        work_dir=NERV_INTERPOLATE["work"],
        lpips=WEIGHTS.lpips,
        code=code_version("nerv_evaluation"),
    resources:
        gpu=section_gpus("nerv"),
    threads: 2
    log:
        "logs/{dataset}/{video}/{nerv_model}/nerv_interpolate.log",
    benchmark:
        "benchmarks/{dataset}/{video}/{nerv_model}/nerv_interpolate.tsv"
    conda:
        "../envs/nerv.yaml"
    script:
        "../scripts/nerv_interpolate.py"


rule nerv_table:
    input:
        nerv_table_inputs,
    output:
        csv=report(LAYOUT.family_table()["csv"], caption="../report/nerv_tables.rst", category="NeRV tables"),
        markdown=LAYOUT.family_table()["markdown"],
    params:
        evaluations=nerv_table_runs,
        code=code_version("nerv_tables"),
    wildcard_constraints:
        kind="|".join(NERV_TABLE_TASKS),
    log:
        "logs/tables/{kind}_{dataset}.log",
    benchmark:
        "benchmarks/tables/{kind}_{dataset}.tsv"
    conda:
        "../envs/tables.yaml"
    script:
        "../scripts/nerv_table.py"


rule nerv_regression_plot:
    input:
        nerv_regression_log_files,
    output:
        report(LAYOUT.nerv_plot(), caption="../report/nerv_tables.rst", category="NeRV tables"),
    params:
        logs=nerv_regression_logs,
        code=code_version("nerv_tables"),
    log:
        "logs/tables/nerv_regression_plot_{dataset}.log",
    benchmark:
        "benchmarks/tables/nerv_regression_plot_{dataset}.tsv"
    conda:
        "../envs/tables.yaml"
    script:
        "../scripts/nerv_regression_plot.py"
