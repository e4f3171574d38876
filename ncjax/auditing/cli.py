"""`python -m ncjax.audit MODELS... --data D --out DIR`: scan many models, one row each in DIR/audit.jsonl.

MODELS are model files, folders of them (.h5/.keras/.onnx) or CSV/JSON manifests (path, data, data_key,
preprocess, layout, architecture, truth, target). Flags this command does not know are `ncjax scan`'s flags,
checked before any model and applied to every scan (e.g. --preset fast --restarts 2). A rerun skips models already
done. With --ray each model is a task on a Ray cluster (pip install 'ray>=2.9'; models, images and --out on a
filesystem every node shares). Exit codes: 0 every model scanned, 1 some model failed (its row says why), 2 bad
input, 130 interrupted (rerun the same command to go on).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from ncjax.auditing.api import audit
from ncjax.auditing.config import AuditConfig, ScanSettings
from ncjax.cli.options import (
    OneLineParser,
    add_dataclass_flags,
    given_values,
    preprocessing_auto,
    preprocessing_given,
    run_command,
)
from ncjax.core.printable import one_line
from ncjax.errors import UsageError

EXIT_OK, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class _AuditParser(OneLineParser):
    """Keeps the flags it does not know for the scans."""

    def parse_args(self, args=None, namespace=None):
        known, rest = self.parse_known_args(args, namespace)
        known.scan_flags = rest
        return known


def build_parser() -> argparse.ArgumentParser:
    p = _AuditParser(prog="python -m ncjax.audit", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("models", nargs="+", help="model files, folders of models, or CSV/JSON manifests")
    p.add_argument("--data", help="clean images for every model whose manifest row names none")
    p.add_argument("--truth", help="CSV/JSON: path (or name), truth (infected|clean), target: adds the rates")
    p.add_argument("--out", required=True, help="the audit's folder: audit.jsonl, audit.csv, audit.md, one folder "
                                                "per model")
    where = p.add_argument_group("where the scans run")
    ray_help = next(f for f in dataclasses.fields(AuditConfig) if f.name == "ray").metadata["help"]
    where.add_argument("--ray", metavar="auto|ADDRESS", help=ray_help)
    p.set_defaults(config_fields=add_dataclass_flags(where, AuditConfig, skip=("ray",)))
    return p


# python -m ncjax.run's flags that the audit sets per model (from its arguments or a manifest row).
_PER_MODEL = {"model": "--model", "data": "--data", "out": "--out", "resume": "--resume", "demo_clean": "--demo-clean",
              "data_key": "--data-key", "layout": "--layout", "architecture": "--architecture",
              "input_shape": "--input-shape", "fail_on_detect": "--fail-on-detect"}


def scan_settings(flags: Sequence[str]) -> ScanSettings:
    """The flags of `python -m ncjax.run` given to the audit, checked once before any model and turned into
    ScanSettings. Without --preset and without scan settings, each model gets its device's preset (focused on CPUs,
    paper on accelerators); with scan settings but no --preset, the preset of this machine's device."""
    from ncjax.cli.scan import build_parser, config_from_args, decision_from_args, generated_flag_fields

    parser = build_parser()
    args = parser.parse_args(list(flags))
    per_model = [flag for name, flag in _PER_MODEL.items() if getattr(args, name) != parser.get_default(name)]
    if per_model:
        raise UsageError(f"{', '.join(per_model)}: the audit sets these per model (its arguments and the manifest's "
                         "columns path, data, data_key, layout, architecture); leave them out of the scan flags.")
    auto = preprocessing_auto(args) or not preprocessing_given(args)  # as ncjax scan: auto unless one is given
    configured = (args.preset or given_values(args, generated_flag_fields())
                  or (preprocessing_given(args) and not auto))
    return ScanSettings(config=config_from_args(args) if configured else None, decision=decision_from_args(args),
                        labels=tuple(args.labels) if args.labels else None, seed=args.seed, force=args.force,
                        max_hours=args.max_hours, preprocess_auto=auto,
                        prefix=args.prefix, compile_cache=not args.no_compile_cache,
                        compile_cache_dir=args.compile_cache)


def run(args: argparse.Namespace) -> int:
    def report(row: dict) -> None:
        what = row.get("verdict_line") if row["status"] == "done" else f"error: {row.get('error')}"
        print(one_line(f"{row['name']}: {what}"), flush=True)

    try:
        config = AuditConfig(ray=args.ray, **given_values(args, args.config_fields))
        result = audit(args.models, out=args.out, data=args.data, truth=args.truth,
                       scan=scan_settings(args.scan_flags), config=config, callback=report)
    except KeyboardInterrupt:
        print("\ninterrupted: the rows written are kept, and a model's scan state; rerun the same command to go on.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    done = len(result.rows) - result.failed
    print(f"{done} of {len(result.rows)} models scanned ({result.skipped} from an earlier run), {result.failed} "
          f"failed; wrote {args.out}/audit.jsonl, audit.csv and audit.md")
    if result.rates is not None:
        r = result.rates
        print(f"truth: {r.detected} of {r.infected} infected called INFECTED, {r.false_alarms} of {r.clean} clean; "
              f"ROC-AUC {'n/a' if r.auc is None else f'{r.auc:.3f} (figure: {args.out}/audit_roc.png)'}")
    return EXIT_SOME_FAILED if result.failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser(), run, argv)
