"""``MlflowRunsDataset``: the runs of the project's MLflow experiment, read back as a table."""

from __future__ import annotations

from typing import Any, cast

import mlflow
import pandas as pd
from kedro.io import AbstractDataset
from kedro.io.core import DatasetError


class MlflowRunsDataset(AbstractDataset[None, pd.DataFrame]):
    """``mlflow.search_runs`` of one experiment: a row per run with ``run_id``, ``start_time``,
    ``params.*``, ``metrics.*`` (each metric's latest value) and ``tags.*`` columns, oldest first.

    Read-only. The tracking URI is the one in force when it loads: in a Kedro session,
    kedro-mlflow sets it from ``mlflow.yml``, so the runs come from the store the study logs to.
    ``filter_string`` is MLflow's search syntax (``attributes.start_time >= 1764158400000``);
    with ``finished_only`` (the default) running and failed runs are left out.

    Example (catalog)::

        mlflow_runs:
          type: heima_kedro.datasets.MlflowRunsDataset
          experiment_name: heima_kedro
    """

    def __init__(
        self,
        *,
        experiment_name: str,
        filter_string: str = "",
        finished_only: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._experiment_name = experiment_name
        self._filter_string = filter_string
        self._finished_only = finished_only
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "experiment_name": self._experiment_name,
            "filter_string": self._filter_string,
            "finished_only": self._finished_only,
        }

    def _search_filter(self) -> str:
        conditions = [self._filter_string.strip()] if self._filter_string.strip() else []
        if self._finished_only:
            conditions.append("attributes.status = 'FINISHED'")
        return " and ".join(conditions)

    def load(self) -> pd.DataFrame:
        runs = mlflow.search_runs(
            experiment_names=[self._experiment_name],
            filter_string=self._search_filter(),
            order_by=["attributes.start_time ASC"],
            output_format="pandas",
        )
        return cast(pd.DataFrame, runs)

    def save(self, data: None) -> None:
        raise DatasetError("MlflowRunsDataset is read-only: MLflow runs are written by `kedro run`")
