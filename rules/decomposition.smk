# Layered neural video decomposition per video: train, evaluate, edit.


rule decompose:
    input:
        frames=STORES["frames"],
        flow=STORES["flow"],
        masks=STORES["masks"],
    output:
        model=DECOMPOSITION["model"],
        log=DECOMPOSITION["log"],
    params:
        section=decomposition_params,
        work_dir=DECOMPOSITION["work"],
        code=code_version("decomposition"),
    resources:
        gpu=training_gpus,
    threads: 2
    log:
        "logs/{dataset}/{video}/decompose.log",
    benchmark:
        "benchmarks/{dataset}/{video}/decompose.tsv"
    conda:
        "../envs/decomposition.yaml"
    script:
        "../scripts/decompose.py"


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        directory(DECOMPOSITION["eval"]),
    params:
        section=evaluation_params,
        lpips=config.get("weights", {}).get("lpips"),
        code=code_version("evaluation"),
    resources:
        gpu=training_gpus,
    threads: 2
    log:
        "logs/{dataset}/{video}/evaluate.log",
    benchmark:
        "benchmarks/{dataset}/{video}/evaluate.tsv"
    conda:
        "../envs/decomposition.yaml"
    script:
        "../scripts/evaluate.py"


rule edit:
    input:
        unpack(edit_inputs),
    output:
        DECOMPOSITION["edit"],
    params:
        edits=edit_params,
        code=code_version("evaluation"),
    threads: 2
    log:
        "logs/{dataset}/{video}/edit.log",
    benchmark:
        "benchmarks/{dataset}/{video}/edit.tsv"
    conda:
        "../envs/decomposition.yaml"
    script:
        "../scripts/edit.py"
