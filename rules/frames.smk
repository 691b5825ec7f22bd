rule frames:
    input:
        source=frames_source,
    output:
        directory(STORES["frames"]),
    params:
        section=stage_params("frames"),
        code=code_version("frames"),
    log:
        "logs/{dataset}/{video}/frames.log",
    benchmark:
        "benchmarks/{dataset}/{video}/frames.tsv"
    conda:
        "../envs/frames.yaml"
    script:
        "../scripts/frames.py"
