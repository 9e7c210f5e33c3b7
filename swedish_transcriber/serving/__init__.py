"""The demo page's logic: decoding uploads and links, engines, long audio, subtitles."""
