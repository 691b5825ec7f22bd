"""Real codecs: trained models as files a user can send and decode, and the traditional anchors.

- ``container``: the one file format every neural codec writes (header, coded payloads);
- ``ans``: entropy coding of integer tensors under a Gaussian model (constriction's ANS);
- ``ffmpeg``: the codecs of the ffmpeg binary the project ships (JPEG, HEVC, H.264, AV1);
- ``anchors``: x264, x265 and AV1 on a video's frames, measured like the neural codecs;
- ``bdrate``: Bjontegaard deltas between rate-distortion curves;
- ``benchmark``: every method of a dataset in one table and one plot per video.

The families' own codecs live with their models (``nvd.models.nvp.codec``,
``nvd.models.nerv.codec``).
"""
