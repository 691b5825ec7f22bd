# NVP (nvd.models.nvp): per-video training with snapshots at the budgets, evaluation of the
# 8-bit quantised model, super-resolution and frame interpolation measured on held-out data,
# and the tables of each dataset that runs NVP (datasets.<name>.families lists nvp).

NVP_RUN = LAYOUT.run_files("nvp")


rule nvp_train:
    input:
        frames=STORES["frames"],
    output:
        model=NVP_RUN["model"],
        log=NVP_RUN["log"],
        snapshots=directory(NVP_RUN["snapshots"]),
    params:
        sections=section_params("nvp"),
        work_dir=NVP_RUN["work"],
        code=code_version("nvp"),
    resources:
        gpu=section_gpus("nvp"),
    threads: 2
    log:
        "logs/{dataset}/{video}/nvp_train.log",
    benchmark:
        "benchmarks/{dataset}/{video}/nvp_train.tsv"
    conda:
        "../envs/nvp.yaml"
    script:
        "../scripts/nvp_train.py"


rule nvp_evaluate:
    input:
        frames=STORES["frames"],
        model=NVP_RUN["model"],
        log=NVP_RUN["log"],
        snapshots=NVP_RUN["snapshots"],
    output:
        report(
            directory(NVP_RUN["eval"]),
            patterns=["{name}.mp4"],
            caption="../report/nvp.rst",
            category="NVP",
            subcategory="{dataset}/{video}",
        ),
    params:
        lpips=WEIGHTS.lpips,
        device=train_device("nvp"),
        code=code_version("nvp_evaluation"),
    resources:
        gpu=section_gpus("nvp"),
    threads: 2
    log:
        "logs/{dataset}/{video}/nvp_evaluate.log",
    benchmark:
        "benchmarks/{dataset}/{video}/nvp_evaluate.tsv"
    conda:
        "../envs/nvp.yaml"
    script:
        "../scripts/nvp_evaluate.py"


rule nvp_superres:
    input:
        frames=STORES["frames"],
    output:
        model=LAYOUT.run_files("nvp_superres")["model"],
        log=LAYOUT.run_files("nvp_superres")["log"],
        eval=directory(LAYOUT.run_files("nvp_superres")["eval"]),
    params:
        sections=section_params("nvp", "nvp_superres"),
        work_dir=LAYOUT.run_files("nvp_superres")["work"],
        lpips=WEIGHTS.lpips,
        code=code_version("nvp_resampling"),
    resources:
        gpu=section_gpus("nvp"),
    threads: 2
    log:
        "logs/{dataset}/{video}/nvp_superres.log",
    benchmark:
        "benchmarks/{dataset}/{video}/nvp_superres.tsv"
    conda:
        "../envs/nvp.yaml"
    script:
        "../scripts/nvp_superres.py"


rule nvp_interpolate:
    input:
        frames=STORES["frames"],
    output:
        model=LAYOUT.run_files("nvp_interpolate")["model"],
        log=LAYOUT.run_files("nvp_interpolate")["log"],
        eval=directory(LAYOUT.run_files("nvp_interpolate")["eval"]),
    params:
        sections=section_params("nvp", "nvp_interpolate"),
        work_dir=LAYOUT.run_files("nvp_interpolate")["work"],
        lpips=WEIGHTS.lpips,
        code=code_version("nvp_resampling"),
    resources:
        gpu=section_gpus("nvp"),
    threads: 2
    log:
        "logs/{dataset}/{video}/nvp_interpolate.log",
    benchmark:
        "benchmarks/{dataset}/{video}/nvp_interpolate.tsv"
    conda:
        "../envs/nvp.yaml"
    script:
        "../scripts/nvp_interpolate.py"


rule nvp_table:
    input:
        unpack(nvp_table_evaluations),
    output:
        csv=report(LAYOUT.family_table()["csv"], caption="../report/nvp_tables.rst", category="NVP tables"),
        markdown=LAYOUT.family_table()["markdown"],
    params:
        evaluations=nvp_table_evaluations,
        code=code_version("nvp_tables"),
    wildcard_constraints:
        kind="|".join(NVP_TABLE_RUNS),
    log:
        "logs/tables/{kind}_{dataset}.log",
    benchmark:
        "benchmarks/tables/{kind}_{dataset}.tsv"
    conda:
        "../envs/tables.yaml"
    script:
        "../scripts/nvp_table.py"
