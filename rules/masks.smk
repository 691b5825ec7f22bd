rule masks:
    input:
        unpack(masks_inputs),
    output:
        directory(STORES["masks"]),
    params:
        section=stage_params("masks"),
        weights=weight_params("masks"),
        code=code_version("masks"),
    resources:
        gpu=gpus_for("masks"),
    threads: 2
    log:
        "logs/{dataset}/{video}/masks.log",
    benchmark:
        "benchmarks/{dataset}/{video}/masks.tsv"
    conda:
        "../envs/masks.yaml"
    script:
        "../scripts/masks.py"
