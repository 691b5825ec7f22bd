"""nvd: neural video decomposition pipeline.

Every stage of the Snakemake workflow is a plain function in this package; the
workflow's scripts/ are thin adapters around them, and the ``nvd`` console
script exposes the same functions by hand.
"""

__version__ = "0.1.0"
