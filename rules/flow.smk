rule flow:
    input:
        frames=STORES["frames"],
    output:
        directory(STORES["flow"]),
    params:
        section=stage_params("flow"),
        weights=weight_params("flow"),
        code=code_version("flow"),
    resources:
        gpu=gpus_for("flow"),
    threads: 2
    log:
        "logs/{dataset}/{video}/flow.log",
    benchmark:
        "benchmarks/{dataset}/{video}/flow.tsv"
    conda:
        "../envs/flow.yaml"
    script:
        "../scripts/flow.py"
