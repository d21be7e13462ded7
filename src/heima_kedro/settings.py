"""Kedro project settings (see Kedro's configuration docs for the defaults)."""

from pathlib import Path

from kedro.config import OmegaConfigLoader

from heima_kedro.hooks import MlflowRunNameHook, RunInputsHook

# Names each `kedro run`'s MLflow run after what ran (kedro-mlflow's own hook is a plugin).
HOOKS = (MlflowRunNameHook(), RunInputsHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment such as `llava_cot` overrides single parameters, not whole groups.
    "merge_strategy": {"parameters": "soft"},
    # `kedro run` works from the project root, where the catalog's relative paths live too.
    # mlflow.yml uses it to make its SQLite URI absolute: MLflow caches stores by URI, so a
    # relative one would reach another project's database from the same Python process.
    "custom_resolvers": {"cwd": lambda: Path.cwd().as_posix()},
}
