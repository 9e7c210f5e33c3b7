"""Speech-to-text engines the page and the inference benchmark run: transformers or CTranslate2.

Both take 16 kHz clips of at most 30 s and return one transcript each, decoded the same way
as the ``transcribe`` stage: Swedish and the task forced (no language detection), no
timestamps, greedy or beam search, openai/whisper's guards against loops and silence, and a
cap on new tokens by the clip's duration (``whisper.DecodeOptions``, params ``app.decode``;
the guards are :mod:`swedish_transcriber.decoding`, shared by both engines). Threads and
CTranslate2's compute type are ``app.engine``.

Modules, none importing another's engine:

* ``contract``: what every engine is (``Engine``, ``EngineSettings``), which engine a
  directory needs (``model_kind``) and the grouping of clips by encoder context (``by_context``);
* ``transformers_engine``: ``TransformersEngine`` (torch and transformers);
* ``ctranslate2_engine``: ``CTranslate2Engine`` (numpy features, ``tokenizers``: no torch);
* ``factory``: ``load_engine``, the engine a directory needs, importing only that engine;
* ``stored_features``: the ``transcribe`` stage's engines, fed the pipeline's stored features.

Each engine serves its model with the encoder context the model recorded
(``whisper.model_context``: a transformers ``config.json`` or an export's
``decode_options.json``; none recorded: padded to 30 s), unless told otherwise. Under
``clip`` a clip's features are the first ``context.frames_for_samples(len(clip))`` frames of
its 30 s window, and the clips of one call are encoded in groups of one context length,
their transcripts returned in the order given.
"""
