"""NeRV, E-NeRV and HNeRV, plain and with Boosting-NeRV's conditional decoder (CVPR 2024).

Public API: ``model_config(name, **overrides)`` (config.py), ``build_model(cfg, height, width,
num_frames)`` (factory.py), ``solve_size`` / ``counted_parameters`` (size.py) and
``strides_for`` (geometry.py). Every model maps frame indices [B] (and, for HNeRV, the frames)
to RGB [B, 3, H, W] in [0, 1]; see base.py.
"""
