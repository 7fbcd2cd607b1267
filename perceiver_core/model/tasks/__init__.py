"""Tasks: outputs + batch -> loss, metrics and predictions."""
