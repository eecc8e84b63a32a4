"""OC20 family: tasks."""
