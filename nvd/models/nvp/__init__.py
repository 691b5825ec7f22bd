"""NVP (Kim et al., NeurIPS 2022): learnable positional features + a modulated SIREN decoder."""
