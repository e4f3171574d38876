"""The focused search: after a warm-up, a scan's compute goes to the labels most likely to be targets.

Every label searches from config.restarts starts for config.warmup_epochs epochs. Then labels rank by their
smallest trigger so far (the best regularizer over their starts): the `candidates` smallest search on up to
max_epochs, as K-Arm spends its budget on likely targets, and so do `anchors` labels at the median, whose further
shrinking tells how much the whole budget would have shrunk a typical label (FocusSummary.shrink; an anchor goes
on from its best start only, a candidate from all of them). The other
labels are frozen with their best trigger so far and their lanes drop out at the next compaction. A label that
has not reached the attack-success threshold when the warm-up ends searches on until it does, then is frozen.

The choice is a function of the warm-up's logs alone, so a resumed scan makes the same one.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from ncjax.scan.result import ScanResult

Role = Literal["candidate", "anchor", "frozen", "unranked"]


class FocusChoice(NamedTuple):
    """The labels that search on after the warm-up."""

    candidates: tuple[int, ...]  # smallest warm-up trigger first
    anchors: tuple[int, ...]  # nearest the warm-up median first

    @property
    def kept(self) -> frozenset[int]:
        return frozenset(self.candidates) | frozenset(self.anchors)


def best_so_far(reg_best_logs: np.ndarray, epochs: int | None = None) -> np.ndarray:
    """(S,) each slot's best regularizer in its first `epochs` epochs (all logged ones by default); inf where
    none reached the attack-success threshold. The logged best never grows, so this is its last value."""
    logs = np.asarray(reg_best_logs, np.float64)[:, :epochs]
    with np.errstate(all="ignore"):
        best = np.where(np.isnan(logs), np.inf, logs).min(axis=1, initial=np.inf)
    return best


def per_label(targets: Sequence[int] | np.ndarray, slot_values: np.ndarray,
              reduce: Callable[[float, float], float] = min) -> dict[int, float]:
    """`reduce` (the smallest by default) of each label's slots' values, labels in order of first appearance."""
    out: dict[int, float] = {}
    for label, value in zip(np.asarray(targets).tolist(), np.asarray(slot_values, np.float64).tolist()):
        out[int(label)] = reduce(out[int(label)], value) if int(label) in out else value
    return out


def choose_focus(norms: dict[int, float], *, candidates: int, anchors: int) -> FocusChoice:
    """From each label's warm-up norm (inf: not reached), the `candidates` smallest and the `anchors` nearest the
    median (in ratio) of the others; ties go to the lower label."""
    reached = sorted((norm, label) for label, norm in norms.items() if np.isfinite(norm))
    chosen = tuple(label for _, label in reached[:candidates])
    rest = reached[candidates:]
    if not rest or anchors == 0:
        return FocusChoice(chosen, ())
    median = float(np.median([norm for norm, _ in reached]))
    distance = lambda item: (abs(np.log(max(item[0], 1e-12) / max(median, 1e-12))), item[1])
    return FocusChoice(chosen, tuple(label for _, label in sorted(rest, key=distance)[:anchors]))


def anchor_slots(targets: np.ndarray, warmup_norms: np.ndarray, anchors: Sequence[int]) -> dict[int, int]:
    """Each anchor's one search that goes on: the start with its smallest warm-up norm (the first on a tie). One is
    enough to measure how far a typical label's trigger shrinks, and it leaves the lanes to the candidates."""
    kept = {}
    for anchor in anchors:
        slots = np.flatnonzero(np.asarray(targets) == anchor)
        kept[int(anchor)] = int(slots[np.argmin(np.asarray(warmup_norms)[slots])])
    return kept


class WarmupChoice(NamedTuple):
    """What the warm-up's logs decide: each slot's warm-up norm, who searches on, and each anchor's one search."""

    slot_norms: np.ndarray  # (S,) best regularizer in the warm-up (inf: not reached)
    choice: FocusChoice
    anchor_slot: dict[int, int]  # anchor label -> the slot position that goes on


def warmup_choice(targets: np.ndarray, reg_best_logs: np.ndarray, *, warmup_epochs: int, candidates: int,
                  anchors: int) -> WarmupChoice:
    """The focus a scan makes after `warmup_epochs`, from its logs alone: the engine freezes by it and the summary
    reports it, so both read it here."""
    warm = best_so_far(reg_best_logs, warmup_epochs)
    choice = choose_focus(per_label(targets, warm), candidates=candidates, anchors=anchors)
    return WarmupChoice(warm, choice, anchor_slots(targets, warm, choice.anchors))


def slots_to_freeze(targets: np.ndarray, reg_best_logs: np.ndarray, *, warmup_epochs: int, candidates: int,
                    anchors: int, searching: Sequence[int]) -> list[int]:
    """Of the slots `searching` (positions), those to freeze now: an anchor's other starts, and every start of a
    label that is neither a candidate nor an anchor once some start of it has reached the attack-success
    threshold."""
    focus = warmup_choice(targets, reg_best_logs, warmup_epochs=warmup_epochs, candidates=candidates,
                          anchors=anchors)
    choice, kept_anchor_slots = focus.choice, set(focus.anchor_slot.values())
    now = per_label(targets, best_so_far(reg_best_logs))
    frozen = []
    for p in searching:
        label = int(targets[p])
        if label in choice.anchors:
            if p not in kept_anchor_slots:
                frozen.append(p)
        elif label not in choice.candidates and np.isfinite(now[label]):
            frozen.append(p)
    return frozen


@dataclass(frozen=True, eq=False)
class FocusSummary:
    """How a focused scan spent its search, per label in order of first appearance."""

    warmup_epochs: int
    labels: np.ndarray  # (L,)
    roles: tuple[Role, ...]  # candidate, anchor, frozen, or unranked: not reached when the warm-up ended
    epochs: np.ndarray  # (L,) epochs the label searched (its longest start)
    warmup_norms: np.ndarray  # (L,) best regularizer after the warm-up (inf: not reached by then)
    final_norms: np.ndarray  # (L,) best regularizer at the end (inf: never reached)
    shrink: float  # median over the anchors of warm-up norm / final norm of the start that went on, at least 1 (1
    # without anchors)

    def labels_with(self, role: Role) -> tuple[int, ...]:
        return tuple(int(label) for label, r in zip(self.labels, self.roles) if r == role)

    def line(self) -> str:
        """One line for people: who searched on, who was frozen when, and the scale on frozen norms."""
        candidates = self.labels_with("candidate")
        anchors = self.labels_with("anchor")
        frozen, unranked = self.labels_with("frozen"), self.labels_with("unranked")
        # No candidate when no label reached a trigger in the warm-up: then only the unranked ones search on.
        kept = (f"label{'s' if len(candidates) != 1 else ''} {', '.join(map(str, candidates))}" if candidates else
                "no ranked label")
        parts = [f"focused search: {kept} searched on (up to {int(self.epochs.max())} epochs)"]
        if anchors:
            parts.append(f"anchor{'s' if len(anchors) > 1 else ''} {', '.join(map(str, anchors))} at the median")
        plural = "s" if len(frozen) != 1 else ""
        parts.append(f"{len(frozen)} label{plural} frozen after the {self.warmup_epochs}-epoch warm-up, their norms "
                     f"divided by {self.shrink:.2f}")
        if unranked:
            parts.append(f"{len(unranked)} reached no trigger in the warm-up and searched on until they did")
        return "; ".join(parts)

    def as_dict(self) -> dict:
        """For report.json: per label its role, epochs and norms (None where none was reached)."""
        plain = lambda v: float(v) if np.isfinite(v) else None
        return {"warmup_epochs": self.warmup_epochs, "shrink": self.shrink, "line": self.line(),
                "labels": [{"label": int(label), "role": role, "epochs": int(epochs), "warmup_norm": plain(warm),
                            "final_norm": plain(final)}
                           for label, role, epochs, warm, final in zip(self.labels, self.roles, self.epochs,
                                                                       self.warmup_norms, self.final_norms)]}

    def scaled_norms(self, labels: np.ndarray, norms: np.ndarray) -> np.ndarray:
        """`norms` (one per label of `labels`) with the frozen labels' divided by `shrink`: what the whole budget
        would have left of them, so the median the score divides by is not inflated by cut-short searches."""
        frozen = set(self.labels_with("frozen"))
        scale = np.asarray([self.shrink if int(label) in frozen else 1.0 for label in labels])
        return np.asarray(norms, np.float64) / scale


def _role(label: int, choice: FocusChoice, warmup_norm: float) -> Role:
    if label in choice.candidates:
        return "candidate"
    if label in choice.anchors:
        return "anchor"
    return "frozen" if np.isfinite(warmup_norm) else "unranked"


def summarize_focus(result: ScanResult) -> FocusSummary | None:
    """The focus of a scan of label slots made with config.warmup_epochs (None for any other scan)."""
    config = result.config
    if config.warmup_epochs is None or (result.sources >= 0).any():
        return None
    logs = np.asarray(result.logs.reg_best)
    focus = warmup_choice(result.labels, logs, warmup_epochs=config.warmup_epochs, candidates=config.candidates,
                          anchors=config.anchors)
    choice, went_on, final_slots = focus.choice, focus.anchor_slot, best_so_far(logs)
    warm, final = per_label(result.labels, focus.slot_norms), per_label(result.labels, final_slots)
    labels = np.asarray(list(warm), np.int64)
    epochs = per_label(result.labels, result.epochs, reduce=max)
    roles: tuple[Role, ...] = tuple(_role(label, choice, warm[label]) for label in labels.tolist())
    ratios = [warm[a] / final_slots[went_on[a]] for a in choice.anchors
              if np.isfinite(final_slots[went_on[a]]) and final_slots[went_on[a]] > 0]
    shrink = max(float(np.median(ratios)), 1.0) if ratios else 1.0
    return FocusSummary(
        warmup_epochs=int(config.warmup_epochs), labels=labels, roles=roles,
        epochs=np.asarray([epochs[label] for label in labels.tolist()], np.int64),
        warmup_norms=np.asarray([warm[label] for label in labels.tolist()]),
        final_norms=np.asarray([final[label] for label in labels.tolist()]), shrink=shrink,
    )
