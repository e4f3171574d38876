"""Many models in one run: `audit` scans each model into its own folder and keeps one row per model, here one
after another or as Ray tasks (`AuditConfig`), each scanned as `ScanSettings` say."""
from ncjax.auditing.api import AuditResult, audit
from ncjax.auditing.config import AuditConfig, ScanSettings
from ncjax.auditing.items import AuditItem

__all__ = ["AuditConfig", "AuditItem", "AuditResult", "ScanSettings", "audit"]
