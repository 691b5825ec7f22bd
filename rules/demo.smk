# The built-in demo clips, generated on the spot (nothing is downloaded).


rule demo_synthetic:
    output:
        frames=directory(f"{DEMO_DIR}/{{clip}}/frames"),
        masks=directory(f"{DEMO_DIR}/{{clip}}/masks"),
        truth=f"{DEMO_DIR}/{{clip}}/ground_truth.npz",
    params:
        clip_dir=f"{DEMO_DIR}/{{clip}}",
        code=code_version("demo"),
    wildcard_constraints:
        clip="|".join(SYNTHETIC_CLIPS),
    log:
        f"logs/demo/{{clip}}.log",
    benchmark:
        f"benchmarks/demo/{{clip}}.tsv"
    conda:
        "../envs/demo.yaml"
    script:
        "../scripts/demo_synthetic.py"


rule demo_footage:
    output:
        f"{DEMO_DIR}/{{clip}}/video.mp4",
    params:
        code=code_version("demo"),
    wildcard_constraints:
        clip="|".join(FOOTAGE_CLIPS),
    log:
        f"logs/demo/{{clip}}.log",
    benchmark:
        f"benchmarks/demo/{{clip}}.tsv"
    conda:
        "../envs/demo.yaml"
    script:
        "../scripts/demo_footage.py"


rule demo_edit_atlas:
    input:
        LAYOUT.run_files("decomposition")["eval"],
    output:
        f"{DEMO_DIR}/edits/{{dataset}}/{{video}}/layer{{layer}}.png",
    params:
        code=code_version("demo_edit"),
    log:
        "logs/demo/edit_{dataset}_{video}_{layer}.log",
    benchmark:
        "benchmarks/demo/edit_{dataset}_{video}_{layer}.tsv"
    conda:
        "../envs/demo.yaml"
    script:
        "../scripts/demo_edit_atlas.py"
