"""Framework-free churn modelling: features to calibrated probabilities, and baselines."""
