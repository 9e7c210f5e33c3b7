"""Models: where the base model comes from, fine-tuning, and the CTranslate2 export."""
