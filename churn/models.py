"""Churn scores and their history (churn issue)."""
