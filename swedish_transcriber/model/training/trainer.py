"""The Trainer of the train stage: ``Seq2SeqTrainer`` plus the top-encoder step and distillation.

Two methods need the training step itself:

* ``trainable: [encoder_top]`` with the encoder cache: the batch holds the stored states below
  the trained layers; the step runs the top layers on them first
  (:mod:`.encoder_top`), inside ``compute_loss`` so gradients reach
  them, and ``prediction_step`` does the same for dev loss and dev transcripts;
* ``distill``: ``compute_loss`` adds the KL to the frozen base model
  (:mod:`.distill`) and keeps its two parts for the logs
  (``distill_ce``, ``distill_kl``, averaged over the logging interval).

The dev loss stays the plain cross-entropy (``prediction_step`` calls the model itself), so
it compares across methods.

Under ``whisper.context: clip`` the data loaders yield batches of one context length
(:mod:`.length_buckets`; ``train_lengths`` / ``eval_lengths``: each
row's context in frames), and a teacher trained on the 30 s window may read its own input
(the collator's ``TEACHER_KEYS``): context distillation.
"""

from __future__ import annotations

from unittest import mock

import torch
from torch.utils.data import DataLoader
from transformers import Seq2SeqTrainer

from swedish_transcriber.model.collator import TEACHER_FEATURES, TEACHER_KEYS, TEACHER_OUTPUTS
from swedish_transcriber.model.training.distill import distillation_kl
from swedish_transcriber.model.training.encoder_top import with_encoder_outputs
from swedish_transcriber.model.training.length_buckets import LengthBuckets


def without_teacher(inputs: dict) -> dict:
    """The student's (and the dev evaluation's) part of a batch."""
    return {k: v for k, v in inputs.items() if k not in TEACHER_KEYS}


def teacher_part(inputs: dict) -> dict:
    """The teacher's inputs: its own padded input where the batch has one."""
    plain = without_teacher(inputs)
    if TEACHER_OUTPUTS in inputs:
        dropped = ("input_features", "encoder_outputs", "encoder_lower_states")
        rest = {k: v for k, v in plain.items() if k not in dropped}
        return {**rest, "encoder_outputs": inputs[TEACHER_OUTPUTS]}
    if TEACHER_FEATURES in inputs:
        return {**plain, "input_features": inputs[TEACHER_FEATURES]}
    return plain


class WhisperTrainer(Seq2SeqTrainer):
    """``Seq2SeqTrainer`` with ``top_layers`` (0: none) and an optional distillation teacher."""

    def __init__(
        self,
        *args,
        top_layers: int = 0,
        teacher=None,
        distill_weight: float = 0.0,
        distill_temperature: float = 1.0,
        train_lengths: list[int] | None = None,
        eval_lengths: list[int] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.train_lengths, self.eval_lengths = train_lengths, eval_lengths
        self.top_layers = top_layers
        self.teacher = teacher
        self.distill_weight = distill_weight
        self.distill_temperature = distill_temperature
        self._parts: dict[str, list[float]] = {"distill_ce": [], "distill_kl": []}

    def _bucketed(self, dataset, buckets: LengthBuckets, description: str) -> DataLoader:
        dataset = self._remove_unused_columns(dataset, description=description)
        loader = DataLoader(
            dataset,
            batch_sampler=buckets,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        return self.accelerator.prepare(loader)

    def get_train_dataloader(self) -> DataLoader:
        if self.train_lengths is None:
            return super().get_train_dataloader()
        buckets = LengthBuckets(
            self.train_lengths, self._train_batch_size, self.args.seed, shuffle=True
        )
        return self._bucketed(self.train_dataset, buckets, "training")

    def get_eval_dataloader(self, eval_dataset=None) -> DataLoader:
        if self.eval_lengths is None or eval_dataset is not None:
            return super().get_eval_dataloader(eval_dataset)
        buckets = LengthBuckets(
            self.eval_lengths, self.args.eval_batch_size, self.args.seed, shuffle=False
        )
        return self._bucketed(self.eval_dataset, buckets, "evaluation")

    def _student_inputs(self, model, inputs: dict) -> dict:
        inputs = without_teacher(inputs)
        if not self.top_layers:
            return inputs
        with torch.set_grad_enabled(torch.is_grad_enabled() and model.training):
            return with_encoder_outputs(model, inputs, self.top_layers)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        student_inputs = self._student_inputs(model, inputs)
        if self.teacher is None or not model.training:
            return super().compute_loss(
                model, student_inputs, return_outputs=return_outputs,
                num_items_in_batch=num_items_in_batch,
            )  # fmt: skip
        outputs = model(**student_inputs)
        with torch.no_grad():
            own = teacher_part(inputs)
            teacher_inputs = (
                own
                if "encoder_outputs" in own and TEACHER_OUTPUTS in inputs
                else with_encoder_outputs(self.teacher, own, self.top_layers)
            )
            teacher_logits = self.teacher(**teacher_inputs).logits
        ce = outputs.loss
        kl = distillation_kl(
            outputs.logits, teacher_logits, inputs["labels"], self.distill_temperature
        )
        loss = ce + self.distill_weight * self.distill_temperature**2 * kl
        self._parts["distill_ce"].append(float(ce.detach()))
        self._parts["distill_kl"].append(float(kl.detach()))
        return (loss, outputs) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        return super().prediction_step(
            model,
            self._student_inputs(model, inputs),
            prediction_loss_only,
            ignore_keys=ignore_keys,
            **gen_kwargs,
        )

    def _load_optimizer_and_scheduler(self, checkpoint):
        """Resume of DDP on CPU processes (gloo): transformers maps the optimizer state to
        ``args.device`` when ``world_size > 1``, which there is ``cpu:<rank>``, a location
        ``torch.load`` cannot restore to ("don't know how to restore data location ...
        cpu:0"); a killed CPU DDP run could not resume. Map it to plain ``cpu``."""
        device = self.args.device
        if checkpoint is None or self.args.world_size <= 1 or device.type != "cpu":
            return super()._load_optimizer_and_scheduler(checkpoint)
        load = torch.load

        def load_on_cpu(*args, map_location=None, **kwargs):
            if isinstance(map_location, torch.device) and map_location.type == "cpu":
                map_location = "cpu"
            return load(*args, map_location=map_location, **kwargs)

        with mock.patch.object(torch, "load", load_on_cpu):
            return super()._load_optimizer_and_scheduler(checkpoint)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            for key, values in self._parts.items():
                if values:
                    logs[key] = round(sum(values) / len(values), 6)
                    values.clear()
        super().log(logs, start_time)
