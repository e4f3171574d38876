"""One model scanned as the command line scans it (`scan_model`: pre-flight, scan, verdict, source check) and the
files it writes: report.json (report), the reference's trigger pictures (pictures) and summary.png (summary)."""
from ncjax.pipeline.model_scan import DecisionConfig, PipelineEvent, ScanOutcome, scan_model
from ncjax.pipeline.out_folder import prepare_out

__all__ = ["DecisionConfig", "PipelineEvent", "ScanOutcome", "prepare_out", "scan_model"]
