"""Learned video embedding: a VideoMAE encoder (transformers) loaded from a local folder."""

from __future__ import annotations

import numpy as np

from nvd.core.devices import resolve_device
from nvd.core.errors import ConfigError, WeightsError
from nvd.data.weights import WeightsConfig, weight_path

PREPROCESSOR_FILE = "preprocessor_config.json"


class VideoMAEEmbedder:
    """VideoMAEModel + VideoMAEImageProcessor from ``weights.videomae``, ready to embed windows.

    The embedding of a window is the mean over all tokens of the encoder's last hidden
    state. VideoMAEModel has no pooling or final norm of its own (the classification
    head's ``fc_norm`` is not part of it, and a pretraining checkpoint has none), so the
    plain token mean is used; D = ``config.hidden_size``.
    """

    def __init__(self, weights: WeightsConfig, window: int, device: str = "auto") -> None:
        import torch
        from transformers import VideoMAEConfig, VideoMAEImageProcessor, VideoMAEModel

        folder = weight_path(weights, "videomae")
        if not (folder / PREPROCESSOR_FILE).is_file():
            raise WeightsError(
                f"config key 'weights.videomae': folder '{folder}' has no {PREPROCESSOR_FILE} "
                "(the image processor's resize/crop/normalisation settings); save it next to the "
                "model with VideoMAEImageProcessor.save_pretrained"
            )
        try:
            config = VideoMAEConfig.from_pretrained(folder, local_files_only=True)
            if window != config.num_frames:
                raise ConfigError(
                    f"config key 'embedding.window' is {window}, but the VideoMAE model in '{folder}' "
                    f"takes windows of num_frames = {config.num_frames} frames; set embedding.window "
                    f"to {config.num_frames}"
                )
            self.processor = VideoMAEImageProcessor.from_pretrained(folder, local_files_only=True)
            model = VideoMAEModel.from_pretrained(folder, config=config, local_files_only=True, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            detail = " ".join(str(exc).split())
            raise WeightsError(
                f"config key 'weights.videomae': cannot load a VideoMAE model from '{folder}' "
                f"({detail[:400]})"
            ) from exc
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.dim = int(config.hidden_size)

    def __call__(self, windows: list[np.ndarray]) -> np.ndarray:
        """Embed B windows, each uint8 [num_frames,H,W,3] RGB -> float32 [B,D]."""
        import torch

        videos = [list(window) for window in windows]
        # channels_last is explicit: a frame 3 pixels high would otherwise be read as CHW.
        pixels = self.processor(videos, return_tensors="pt", input_data_format="channels_last")["pixel_values"]
        with torch.inference_mode():
            hidden = self.model(pixel_values=pixels.to(self.device)).last_hidden_state  # [B,tokens,D]
        return hidden.mean(dim=1).float().cpu().numpy()
