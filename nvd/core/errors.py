"""Exception types. Each carries one message meant for the person running the pipeline."""


class NvdError(Exception):
    """Base class: a problem the user can fix (bad input, bad config, missing weights)."""


class ConfigError(NvdError):
    """The configuration has a wrong key, type or value."""


class InputError(NvdError):
    """An input file or folder is missing, unreadable or inconsistent."""


class WeightsError(NvdError):
    """A model weight file named in the config is missing or does not fit the model."""


class StoreError(NvdError):
    """A Zarr store is missing, of the wrong stage, or incomplete."""
