"""LRA family: tasks."""
