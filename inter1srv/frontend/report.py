"""A session's event list folded into the upload answer (``AnalysisResult`` of the official SDK).

- ``signals``: one entry per detected range: ``type``, ``start`` (from
  ``signal.detected``), ``end`` (from ``signal.ended``), the peak ``probability``
  band over the range with the rationale that came with it, and every modality
  that contributed.
- ``engagement_state``: the transitions as ranges (each state lasts until the
  next transition, the last one until the end of the media).
- ``conversation_quality`` (only when an include flag asks): ``overall`` (the
  last cumulative value; all 50 without evidence) and, for
  ``conversation_quality_timeline``, every window slice.
- ``feedback`` (only when goal dimensions were given): the last coaching
  sentence, or ``no_feedback`` with a reason.
"""

from __future__ import annotations

from inter1srv.protocol.constants import INCLUDE_OVERALL, INCLUDE_TIMELINE

_BAND_RANK = {"low": 0, "medium": 1, "high": 2}
_NEUTRAL_CQI = {k: 50.0 for k in ("quality_index", "clarity", "authority", "energy", "rapport", "learning")}


def signal_ranges(events: list[dict], media_end: float) -> list[dict]:
    active: dict[str, dict] = {}
    out: list[dict] = []
    for ev in events:
        d = ev["data"]
        if ev["type"] == "signal.detected":
            active[d["signal_type"]] = {
                "type": d["signal_type"], "start": d["start"], "end": None, "probability": d["probability"],
                "rationale": d.get("rationale"), "modality": list(d.get("modality") or []),
                "probability_score": d.get("probability_score"),
            }
        elif ev["type"] == "signal.updated" and d["signal_type"] in active:
            entry = active[d["signal_type"]]
            for m in d.get("modality") or []:
                if m not in entry["modality"]:
                    entry["modality"].append(m)
            if _BAND_RANK.get(d["probability"], 0) > _BAND_RANK.get(entry["probability"], 0):
                entry.update(probability=d["probability"], rationale=d.get("rationale"),
                             probability_score=d.get("probability_score"))
        elif ev["type"] == "signal.ended" and d["signal_type"] in active:
            entry = active.pop(d["signal_type"])
            entry["end"] = d["end"]
            out.append(entry)
    for entry in active.values():
        entry["end"] = media_end
        out.append(entry)
    out.sort(key=lambda e: (e["start"], e["type"]))
    return out


def engagement_ranges(events: list[dict], media_end: float) -> list[dict]:
    changes = [(ev["data"]["state"], ev["data"]["start"]) for ev in events if ev["type"] == "engagement.updated"]
    out = []
    for i, (state, start) in enumerate(changes):
        end = changes[i + 1][1] if i + 1 < len(changes) else media_end
        if end > start:
            out.append({"state": state, "start": start, "end": round(end, 3)})
    return out


def conversation_quality(events: list[dict], include: set[str]) -> dict:
    overall = None
    timeline: list[dict] = []
    for ev in events:
        if ev["type"] == "conversation_quality.updated":
            overall = ev["data"].get("overall") or overall
            timeline.extend(ev["data"].get("timeline") or [])
    section: dict = {"overall": overall or dict(_NEUTRAL_CQI)}
    if INCLUDE_TIMELINE in include:
        section["timeline"] = timeline
    return section


def feedback(events: list[dict], signals: list[dict], dimensions: list[str]) -> dict:
    texts = [ev["data"]["feedback"] for ev in events if ev["type"] == "feedback.generated"]
    if not texts:
        return {"type": "no_feedback", "reason": "The media was too short or gave too little evidence for feedback."}
    weight: dict[str, float] = {}
    for s in signals:
        weight[s["type"]] = weight.get(s["type"], 0.0) + (s["end"] - s["start"]) * (1 + _BAND_RANK[s["probability"]])
    primary = max(weight, key=lambda k: weight[k]) if weight else None
    return {"type": "feedback", "message": texts[-1], "active_dimensions": list(dimensions), "primary_signal": primary}


def build_report(events: list[dict], *, media_end: float, include: set[str],
                 goal_dimensions: list[str] | None) -> dict:
    """The upload answer from a session's events (envelopes or sequencer events: both have type and data)."""
    signals = signal_ranges(events, media_end)
    report: dict = {
        "signals": [{k: v for k, v in s.items() if k != "probability_score"} for s in signals],
        "engagement_state": engagement_ranges(events, media_end),
    }
    if include & {INCLUDE_OVERALL, INCLUDE_TIMELINE}:
        report["conversation_quality"] = conversation_quality(events, include)
    if goal_dimensions:
        report["feedback"] = feedback(events, signals, goal_dimensions)
    return report
