"""Shared code of the SageMaker jobs (train, evaluate, compress) and of the serving handler.

Packaged with jobs/ as sourcedir.tar.gz, and copied into every model archive as code/lepton_ml/.
It never imports the Lambda layer (`lepton`) nor localcloud. The serving path (errors,
preprocessing, model, archive, predictor) needs only the standard library, numpy and torch.
"""
