"""The data layer shared by every family: remote file specs and downloads, checksums, safe
archive extraction, and Parquet tables with data cards and rejects files."""
