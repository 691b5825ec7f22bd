# Real codecs (nvd.compression): each trained NVP and NeRV-family model coded into one file at
# several rate points, the traditional anchors (x264, x265, AV1) on the same frames, and the
# benchmark of each dataset that runs them. Sections present turn them on: nvp_compress,
# nerv_compress, codec_anchor (the anchors) and benchmark; {point} is a rate point of the
# family's section, {anchor} one anchor curve.


rule nvp_compress:
    input:
        frames=STORES["frames"],
        model=NVP_RUN["model"],
        log=NVP_RUN["log"],
    output:
        report(
            directory(LAYOUT.compressed("nvp")),
            patterns=["{name}.mp4"],
            caption="../report/compressed.rst",
            category="Codecs",
            subcategory="{dataset}/{video} (nvp {point})",
        ),
    params:
        sections=codec_section("nvp_compress", nvp_point_section),
        lpips=WEIGHTS.lpips,
        device=train_device("nvp"),
        code=code_version("nvp_compress"),
    resources:
        gpu=section_gpus("nvp"),
    threads: 2
    log:
        "logs/{dataset}/{video}/nvp_compress_{point}.log",
    benchmark:
        "benchmarks/{dataset}/{video}/nvp_compress_{point}.tsv"
    conda:
        "../envs/nvp.yaml"
    script:
        "../scripts/nvp_compress.py"


rule nerv_compress:
    input:
        frames=STORES["frames"],
        model=NERV_RUN["model"],
        log=NERV_RUN["log"],
    output:
        report(
            directory(LAYOUT.compressed("{nerv_model}")),
            patterns=["{name}.mp4"],
            caption="../report/compressed.rst",
            category="Codecs",
            subcategory="{dataset}/{video} ({nerv_model} {point})",
        ),
    params:
        sections=codec_section("nerv_compress", nerv_point_section),
        work_dir=LAYOUT.compress_work("{nerv_model}"),
        lpips=WEIGHTS.lpips,
        device=train_device("nerv_compress"),
        code=code_version("nerv_compress"),
    resources:
        gpu=section_gpus("nerv_compress"),
    threads: 2
    log:
        "logs/{dataset}/{video}/{nerv_model}/nerv_compress_{point}.log",
    benchmark:
        "benchmarks/{dataset}/{video}/{nerv_model}/nerv_compress_{point}.tsv"
    conda:
        "../envs/nerv.yaml"
    script:
        "../scripts/nerv_compress.py"


rule codec_anchor:
    input:
        frames=STORES["frames"],
    output:
        directory(LAYOUT.anchor()),
    params:
        sections=codec_section("codec_anchor", curve_section, "anchor"),
        lpips=WEIGHTS.lpips,
        code=code_version("codec_anchor"),
    threads: 2
    log:
        "logs/{dataset}/{video}/codec_anchor_{anchor}.log",
    benchmark:
        "benchmarks/{dataset}/{video}/codec_anchor_{anchor}.tsv"
    conda:
        "../envs/codecs.yaml"
    script:
        "../scripts/codec_anchor.py"


rule benchmark:
    input:
        benchmark_input_folders,
    output:
        csv=report(LAYOUT.family_table("benchmark")["csv"], caption="../report/benchmark.rst", category="Codecs"),
        markdown=LAYOUT.family_table("benchmark")["markdown"],
        bd_csv=report(LAYOUT.family_table("bdrate")["csv"], caption="../report/benchmark.rst", category="Codecs"),
        bd_markdown=LAYOUT.family_table("bdrate")["markdown"],
    params:
        folders=benchmark_folders,
        sections=section_params("benchmark"),
        code=code_version("benchmark"),
    log:
        "logs/tables/benchmark_{dataset}.log",
    benchmark:
        "benchmarks/tables/benchmark_{dataset}.tsv"
    conda:
        "../envs/tables.yaml"
    script:
        "../scripts/benchmark.py"


rule rd_plot:
    input:
        rd_plot_folders,
    output:
        report(LAYOUT.rd_plot(), caption="../report/benchmark.rst", category="Codecs"),
    params:
        folders=rd_plot_folders,
        code=code_version("benchmark"),
    log:
        "logs/tables/rd_{dataset}/{video}.log",
    benchmark:
        "benchmarks/tables/rd_{dataset}/{video}.tsv"
    conda:
        "../envs/tables.yaml"
    script:
        "../scripts/rd_plot.py"
