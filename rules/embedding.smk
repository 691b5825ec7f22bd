rule embedding:
    input:
        frames=STORES["frames"],
    output:
        directory(STORES["embedding"]),
    params:
        section=stage_params("embedding"),
        weights=weight_params("embedding"),
        code=code_version("embedding"),
    resources:
        gpu=gpus_for("embedding"),
    threads: 2
    log:
        "logs/{dataset}/{video}/embedding.log",
    benchmark:
        "benchmarks/{dataset}/{video}/embedding.tsv"
    conda:
        "../envs/embedding.yaml"
    script:
        "../scripts/embedding.py"
