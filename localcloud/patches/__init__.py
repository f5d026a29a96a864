"""Narrow patches to moto 5.2.5 (pinned). Each module documents what moto does, what AWS does,
and the one seam it replaces; `install()` is idempotent."""
