"""An audit's models as Ray tasks: Ray places them (a GPU each, or a share of CPUs), retries a task whose worker
died, and hands back each row as it finishes; nothing here schedules.

Each task runs the same scan_item as a local audit, on the worker, into the audit's folder: the models, the
clean images and the audit's folder must be at the same paths on every node (a shared filesystem), which is
also what lets a retried task resume the scan checkpoint its dead worker left.
"""
from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from pathlib import Path

from ncjax.auditing.config import AuditConfig, ScanSettings
from ncjax.auditing.items import AuditItem
from ncjax.auditing.local import item_row, scan_item
from ncjax.errors import MissingDependencyError, UsageError


def import_ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("an audit on Ray needs the ray package: pip install 'ray>=2.9' (or leave "
                                     "out --ray to scan the models one after another here).") from None
    return ray


def scan_on_worker(item: AuditItem, out: str, data: str | None, settings: ScanSettings) -> dict:
    """The task's body: one model scanned on whichever worker Ray chose."""
    if not Path(out).is_dir():
        return {**item_row(item, Path(out), data), "status": "error", "host": socket.gethostname(),
                "error": f"the audit's folder {out!r} is not on the worker {socket.gethostname()!r}: the audit's "
                         "folder, models and images must be on a filesystem every Ray node shares."}
    return scan_item(item, Path(out), data=data, settings=settings)


def _connect(ray, address: str) -> bool:
    """Join the cluster (or start a local one); True if this call started the connection (so it ends it)."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=None if address == "auto" else address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise UsageError(f"cannot reach the Ray cluster {address!r} ({_first_line(e)}); check that it runs "
                         "(ray start --head) at that address and, if it uses token authentication, that its token "
                         "is set (Ray's RAY_AUTH_TOKEN); or give --ray auto to start one on this machine.") from None
    return True


def task_resources(ray, config: AuditConfig) -> dict:
    """One GPU share per model where the cluster has GPUs; else a share of CPUs (default: a whole node's)."""
    if ray.cluster_resources().get("GPU", 0) > 0:
        return {"num_gpus": config.gpus_per_model, "num_cpus": 1}
    if config.cpus_per_model is not None:
        return {"num_cpus": config.cpus_per_model}
    counts = [node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
    return {"num_cpus": min(c for c in counts if c > 0) if any(counts) else 1}


def scan_on_ray(items: Sequence[AuditItem], out: Path, *, data: str | None, settings: ScanSettings,
                config: AuditConfig, on_row: Callable[[dict], None]) -> None:
    """Submit one task per item and pass each row to `on_row` as its task finishes (in finishing order). A
    task that failed every retry gets an error row. On an interrupt the tasks still running are cancelled
    (their checkpoints stay for a rerun) and the interrupt propagates."""
    ray = import_ray()
    started = _connect(ray, config.ray or "auto")
    try:
        task = ray.remote(scan_on_worker).options(max_retries=config.retries, retry_exceptions=False,
                                                  **task_resources(ray, config))
        pending = {task.remote(item, str(out.resolve()), data, settings): item for item in items}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                item = pending.pop(ready[0])
                on_row(_result(ray, ready[0], item, out, data, config))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()


def _result(ray, ref, item: AuditItem, out: Path, data: str | None, config: AuditConfig) -> dict:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as e:  # the worker died more often than the retries allow
        return {**item_row(item, out, data), "status": "error",
                "error": f"its Ray task failed {config.retries + 1} times ({type(e).__name__}: "
                         f"{_first_line(e)})"[:500]}


def _first_line(error: Exception) -> str:
    """Ray's messages run to many lines of advice; the first says what happened."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
