"""The MLflow "model from code" file of every model mlc registers: MLflow copies this file into
the model and runs it on load, so no pickled Python object is stored (see `model_package`)."""

import mlflow.models

from mlc.runtime.model_package import ContractModel

mlflow.models.set_model(ContractModel())
