# The papers' tables in their own layout, our figure beside the published one in each cell
# (nvd.eval.paper_tables): HyperNVD's finetuning vs scratch, NVP's encoding time, Boosting-NeRV's
# regression and rate-distortion. Each reads one of our tables; with the demo config they are
# the same tables at demo scale. Target: `snakemake paper_tables`.


rule paper_table:
    input:
        paper_table_source,
    output:
        report(LAYOUT.paper_table(), caption="../report/paper_tables.rst", category="Paper tables"),
    params:
        code=code_version("paper_tables"),
    wildcard_constraints:
        kind="|".join(PAPER_TABLES),
    log:
        "logs/tables/paper_{kind}_{dataset}.log",
    benchmark:
        "benchmarks/tables/paper_{kind}_{dataset}.tsv"
    conda:
        "../envs/tables.yaml"
    script:
        "../scripts/paper_table.py"
