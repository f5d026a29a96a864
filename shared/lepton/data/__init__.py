"""Data preparation records: data contracts, dataset versions and rejections."""
