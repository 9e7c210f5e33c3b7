"""Scoring transcripts: batched transcription, the Swedish normaliser, WER/CER, reports.

Below ``model`` in the layers: training uses these metrics for its dev WER.
"""
