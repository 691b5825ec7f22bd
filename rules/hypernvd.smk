# HyperNVD (nvd.models.hypernvd): a hypernetwork trained across a dataset's training split,
# finetuned on each held-out video and compared with training the same model from scratch.


rule train_hyper:
    input:
        hypernet_inputs,
    output:
        model=HYPERNET["model"],
        log=HYPERNET["log"],
    params:
        sections=section_params("hypernet"),
        videos=hyper_training_stores,
        work_dir=HYPERNET["work"],
        code=code_version("hypernet"),
    resources:
        gpu=section_gpus("hypernet"),
    threads: 2
    log:
        "logs/hypernet/{dataset}/train_hyper.log",
    benchmark:
        "benchmarks/hypernet/{dataset}/train_hyper.tsv"
    conda:
        "../envs/decomposition.yaml"
    script:
        "../scripts/train_hyper.py"


rule hyper_output:
    input:
        unpack(hyper_video_inputs),
    output:
        HYPER_OUTPUT,
    params:
        sections=section_params("hypernet", "finetune"),
        split=hyper_split_of,
        code=code_version("hypernet"),
    resources:
        gpu=section_gpus("finetune"),
    threads: 2
    log:
        "logs/{dataset}/{video}/hyper_output.log",
    benchmark:
        "benchmarks/{dataset}/{video}/hyper_output.tsv"
    conda:
        "../envs/decomposition.yaml"
    script:
        "../scripts/hyper_output.py"


rule finetune:
    input:
        unpack(hyper_video_inputs),
    output:
        model=LAYOUT.run_files("finetune")["model"],
        log=LAYOUT.run_files("finetune")["log"],
    params:
        sections=section_params("hypernet", "finetune"),
        work_dir=LAYOUT.run_files("finetune")["work"],
        code=code_version("hypernet"),
    resources:
        gpu=section_gpus("finetune"),
    threads: 2
    log:
        "logs/{dataset}/{video}/finetune.log",
    benchmark:
        "benchmarks/{dataset}/{video}/finetune.tsv"
    conda:
        "../envs/decomposition.yaml"
    script:
        "../scripts/finetune.py"


rule scratch:
    input:
        unpack(scratch_inputs),
    output:
        model=LAYOUT.run_files("scratch")["model"],
        log=LAYOUT.run_files("scratch")["log"],
    params:
        sections=section_params("hypernet", "finetune", "scratch"),
        work_dir=LAYOUT.run_files("scratch")["work"],
        code=code_version("hypernet"),
    resources:
        gpu=section_gpus("finetune"),
    threads: 2
    log:
        "logs/{dataset}/{video}/scratch.log",
    benchmark:
        "benchmarks/{dataset}/{video}/scratch.tsv"
    conda:
        "../envs/decomposition.yaml"
    script:
        "../scripts/scratch.py"


rule tables:
    input:
        tables_inputs,
    output:
        **{
            name: report(path, caption="../report/tables.rst", category="HyperNVD tables")
            for name, path in tables_files().items()
        },
    params:
        sections=section_params("hypernet", "tables"),
        runs=table_runs,
        outputs=table_outputs,
        code=code_version("tables"),
    log:
        "logs/tables.log",
    benchmark:
        "benchmarks/tables.tsv"
    conda:
        "../envs/tables.yaml"
    script:
        "../scripts/tables.py"
