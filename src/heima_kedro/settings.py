"""Kedro project settings (see Kedro's configuration docs for the defaults)."""

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment such as `llava_cot` overrides single parameters, not whole groups.
    "merge_strategy": {"parameters": "soft"},
}
