"""The data-centric review loop: which clips' labels are most likely wrong, and what is done.

Crowd-sourced corpora carry label errors that no rule catches (a sentence read differently
from its text, a truncated recording, a clip filed under the wrong sentence). After training,
the models themselves are the best witnesses: a clip the fine-tuned model finds unlikely, or
transcribes far from its label, is worth a person's look. A person's decision, or the top of
the ranking left out unreviewed, then changes what trains. This layer sits above ``model``
(it runs the trained models) and below ``serving`` (the review page reads its queue and
writes its decisions); params section ``review``:

* :mod:`.params`: params section ``review`` (``review.rank``: weights and decoding caps;
  ``review.auto_exclude_top_fraction``; ``review.page``: the review page's settings);
* :mod:`.stored_states`: the train stage's stored encoder outputs, reused when they are the
  base encoder's for these very features;
* :mod:`.model_passes`: per-clip teacher-forced loss and greedy transcripts from encoder
  outputs (the encoder runs at most once per clip);
* :mod:`.suspicion`: components -> comparable scores -> one ``suspicion``, ranked;
* :mod:`.queue`: the rank stage: inputs checked, clips measured, queue written;
* :mod:`.decisions`: a person's keep / exclude / fix decisions, in the git-tracked
  ``data/review/decisions.tsv`` (strict reader, locked atomic writer);
* :mod:`.apply`: the decisions applied to the manifests (the validate stage, all or nothing);
* :mod:`.auto`: the automatic mode, the top of the queue left out (the retrain stage).
"""
