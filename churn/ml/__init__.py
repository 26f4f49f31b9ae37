"""Framework-free churn modelling: features to calibrated probabilities, and baselines.

Nothing here imports Django: the domain layer (``churn.selectors``) turns event rows into an
:class:`~churn.ml.features.EventLog` of numpy arrays, and everything below works on those.
"""
