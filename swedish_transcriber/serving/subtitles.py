"""Transcript downloads: plain text and SubRip (.srt) subtitles."""

from __future__ import annotations

from swedish_transcriber.serving.long_form import Transcript


def timestamp(seconds: float, separator: str = ",") -> str:
    """``HH:MM:SS,mmm`` as SubRip writes time (``.`` as separator for display)."""
    millis = max(0, int(round(seconds * 1000)))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(transcript: Transcript) -> str:
    """Numbered SubRip cues, one per segment with text (empty segments are skipped)."""
    cues = []
    for segment in (s for s in transcript.segments if s.text.strip()):
        span = f"{timestamp(segment.start)} --> {timestamp(segment.end)}"
        cues.append(f"{len(cues) + 1}\n{span}\n{segment.text.strip()}\n")
    return "\n".join(cues)


def to_txt(transcript: Transcript) -> str:
    """The transcript as text, one segment per line."""
    lines = [s.text.strip() for s in transcript.segments if s.text.strip()]
    return "\n".join(lines) + ("\n" if lines else "")
