"""Framework-free experiment analysis: assignment, attribution and statistics (no Django)."""
