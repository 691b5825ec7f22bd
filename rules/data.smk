# Data stages per video: frames -> optical flow, object masks, video embedding, each one
# Zarr store under <results>/<dataset>/<video>/ (nvd.data).


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
