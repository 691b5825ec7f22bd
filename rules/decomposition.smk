# Layered neural video decomposition per video: train, evaluate, edit. `evaluate` and `edit`
# serve every trained model of a video: decomposition, finetune (HyperNVD) and scratch.


rule decompose:
    input:
        frames=STORES["frames"],
        flow=STORES["flow"],
        masks=STORES["masks"],
    output:
        model=run_files("decomposition")["model"],
        log=run_files("decomposition")["log"],
    params:
        section=decomposition_params,
        work_dir=run_files("decomposition")["work"],
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
        report(
            directory(RUN["eval"]),
            patterns=["{name}.mp4", "{name}.png"],
            caption="../report/evaluation.rst",
            category="Decompositions",
            subcategory="{dataset}/{video} ({method})",
        ),
    params:
        section=evaluation_params,
        lpips=config.get("weights", {}).get("lpips"),
        code=code_version("evaluation"),
    resources:
        gpu=training_gpus,
    threads: 2
    log:
        "logs/{dataset}/{video}/{method}/evaluate.log",
    benchmark:
        "benchmarks/{dataset}/{video}/{method}/evaluate.tsv"
    conda:
        "../envs/decomposition.yaml"
    script:
        "../scripts/evaluate.py"


rule edit:
    input:
        unpack(edit_inputs),
    output:
        RUN["edit"],
    params:
        edits=edit_params,
        code=code_version("evaluation"),
    threads: 2
    log:
        "logs/{dataset}/{video}/{method}/edit.log",
    benchmark:
        "benchmarks/{dataset}/{video}/{method}/edit.tsv"
    conda:
        "../envs/decomposition.yaml"
    script:
        "../scripts/edit.py"
