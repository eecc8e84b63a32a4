"""Model implementations, one file each (see CONTRIBUTING.md); imported only when a model is built."""
