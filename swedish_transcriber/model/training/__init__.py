"""Fine-tuning Whisper: the run (``fine_tune``), its params and the parts only training uses."""
