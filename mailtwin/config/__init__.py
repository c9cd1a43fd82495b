"""OfflineIMAP-format config: read, check against the option table, and build frozen values."""

from mailtwin.config.load import find_config, load_config, only_folders
from mailtwin.config.model import AccountConfig, Config, GeneralConfig, RepositoryConfig

__all__ = [
    "AccountConfig",
    "Config",
    "GeneralConfig",
    "RepositoryConfig",
    "find_config",
    "load_config",
    "only_folders",
]
