"""The spec's response shapes, field by field; extra fields are allowed."""

from __future__ import annotations

import re
from typing import Any

NUMBER = (int, float)
SUMMARY = {
    "total_photos": int,
    "recognized_count": int,
    "unrecognized_count": int,
    "recognition_rate": NUMBER,
    "unique_persons": int,
    "persons_list": list,
    "avg_confidence": NUMBER,
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$")
BATCH_ID = re.compile(r"^\d{8}_\d{6}_\d{4}$")


def check_fields(value: dict[str, Any], shape: dict[str, Any], where: str) -> None:
    for key, kind in shape.items():
        assert key in value, f"{where}: missing {key!r}"
        assert isinstance(value[key], kind), f"{where}.{key}: {value[key]!r} is not {kind}"
        assert not (kind is int and isinstance(value[key], bool)), f"{where}.{key} is a bool"


def check_summary(summary: dict[str, Any]) -> None:
    check_fields(summary, SUMMARY, "summary")
    assert summary["recognized_count"] + summary["unrecognized_count"] == summary["total_photos"]
    assert summary["unique_persons"] == len(summary["persons_list"])
    assert round(summary["recognition_rate"], 2) == summary["recognition_rate"]
    assert round(summary["avg_confidence"], 1) == summary["avg_confidence"]


def check_recognize_response(body: dict[str, Any]) -> None:
    check_fields(
        body,
        {
            "success": bool,
            "batch_id": str,
            "total_uploaded": int,
            "total_processed": int,
            "summary": dict,
            "message": str,
            "log_url": str,
        },
        "recognize",
    )
    assert body["success"] is True
    assert BATCH_ID.match(body["batch_id"])
    assert body["log_url"] == f"/api/batch-photos/logs/{body['batch_id']}"
    assert body["message"].startswith(f"Processed {body['total_processed']} photos. Check batch log for details.")
    check_summary(body["summary"])


def check_entry(entry: dict[str, Any], batch_id: str, domain: str) -> None:
    check_fields(
        entry,
        {
            "timestamp": str,
            "batch_id": str,
            "filename": str,
            "domain": str,
            "recognized": bool,
            "primary_result": dict,
            "top_3_matches": list,
            "metadata": dict,
        },
        "entry",
    )
    assert TIMESTAMP.match(entry["timestamp"])
    assert (entry["batch_id"], entry["domain"]) == (batch_id, domain)
    primary = entry["primary_result"]
    assert set(primary) >= {"person", "confidence"}
    if entry["recognized"]:
        assert isinstance(primary["confidence"], NUMBER)
        assert primary["person"] == entry["top_3_matches"][0]["person"]
    else:
        assert primary == {"person": "Unknown", "confidence": None}
    matches = entry["top_3_matches"]
    assert len(matches) <= 3
    assert [m["rank"] for m in matches] == list(range(1, len(matches) + 1))
    assert len({m["person"] for m in matches}) == len(matches)
    for match in matches:
        check_fields(match, {"rank": int, "person": str, "confidence": NUMBER}, "match")
        assert 0 <= match["confidence"] <= 100
        assert round(match["confidence"], 1) == match["confidence"]
    assert [m["confidence"] for m in matches] == sorted((m["confidence"] for m in matches), reverse=True)
    check_fields(entry["metadata"], {"face_count": int, "processing_time_ms": int}, "metadata")
    assert entry["metadata"]["has_multiple_faces"] == (entry["metadata"]["face_count"] > 1)
    if entry["metadata"]["face_count"] == 0:
        assert matches == []
