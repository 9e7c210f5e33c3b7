"""The corpus side: reading releases, the manifest, validation, augmentation, features.

Nothing here knows about models beyond the Whisper processor that makes features.
"""
