"""Framework-free tagging models: zero-shot and supervised tag scoring over vectors."""
