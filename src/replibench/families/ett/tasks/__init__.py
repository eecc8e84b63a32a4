"""ETT family: tasks."""
