"""The data-centric review loop's ranking: which clips' labels are most likely wrong.

Crowd-sourced corpora carry label errors that no rule catches (a sentence read differently
from its text, a truncated recording, a clip filed under the wrong sentence). After training,
the models themselves are the best witnesses: a clip the fine-tuned model finds unlikely, or
transcribes far from its label, is worth a person's look. This layer sits above ``model``
(it runs the trained models) and below ``serving`` (the review page reads its queue):

* :mod:`.params`: params section ``curation`` (``curation.rank``: weights and decoding caps);
* :mod:`.stored_states`: the train stage's stored encoder outputs, reused when they are the
  base encoder's for these very features;
* :mod:`.model_passes`: per-clip teacher-forced loss and greedy transcripts from encoder
  outputs (the encoder runs at most once per clip);
* :mod:`.suspicion`: components -> comparable scores -> one ``suspicion``, ranked;
* :mod:`.queue`: the whole stage: inputs checked, clips measured, queue written.
"""
