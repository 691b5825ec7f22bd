# Hashing-NVD: the layered decomposition of each video (nvd.models.hashing_nvd). `evaluate`
# and `edit` serve every trained model of a video: decomposition, finetune and scratch
# (HyperNVD), each on the device its training section names.


rule decompose:
    input:
        unpack(decomposition_inputs),
    output:
        model=LAYOUT.run_files("decomposition")["model"],
        log=LAYOUT.run_files("decomposition")["log"],
    params:
        sections=section_params("decomposition"),
        work_dir=LAYOUT.run_files("decomposition")["work"],
        code=code_version("decomposition"),
    resources:
        gpu=section_gpus("decomposition"),
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
        sections=section_params("evaluation"),
        lpips=WEIGHTS.lpips,
        device=method_device,
        code=code_version("evaluation"),
    resources:
        gpu=method_gpus,
    threads: 2
    wildcard_constraints:
        method=DECOMPOSITION_METHODS,
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
        edit=edit_params,
        device=method_device,
        code=code_version("edit"),
    resources:
        gpu=method_gpus,
    threads: 2
    wildcard_constraints:
        method=DECOMPOSITION_METHODS,
    log:
        "logs/{dataset}/{video}/{method}/edit.log",
    benchmark:
        "benchmarks/{dataset}/{video}/{method}/edit.tsv"
    conda:
        "../envs/decomposition.yaml"
    script:
        "../scripts/edit.py"
