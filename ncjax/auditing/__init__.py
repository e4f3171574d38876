"""Many models in one run: ncjax.audit scans each model into its own folder and keeps one row per model."""
