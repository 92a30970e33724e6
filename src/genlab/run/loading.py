"""Rebuilding a finished run from what it left behind, and loading a hub model as genlab's own."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from genlab.config.compose import instantiate_data, instantiate_model
from genlab.config.targets import target_errors
from genlab.errors import GenlabError
from genlab.models.abilities import ImageModel
from genlab.run.checkpoints import check_checkpoint_fits, checked_checkpoint
from genlab.run.run_dir import RunDir


def load_run(
    run_dir: str | Path, checkpoint: str = "best", trust_remote_code: bool = False
) -> tuple[L.LightningModule, L.LightningDataModule, DictConfig]:
    """Rebuild a finished run's model (weights from `checkpoint`) and datamodule from its config.

    `checkpoint` is "best", "last" or a path. The config is the run's saved `config.yaml`, not
    today's defaults, so the model and data are the ones that were trained. It is data, not
    code: only genlab's and the allowed libraries' classes are built from it, and a config that
    asks to run a hub model's own code is refused unless `trust_remote_code=True`.
    """
    run = RunDir(run_dir)
    cfg = run.read_config()
    _check_saved_config(cfg, run, trust_remote_code)
    # Loaded once: checked (genlab-train's checks of ckpt_path), then used.
    state, problems = checked_checkpoint(checkpoint, run, cfg.model.get("_target_"))
    if problems:  # missing, corrupt, or written by another model class
        raise GenlabError("\n".join(problems))
    model = instantiate_model(cfg.model)
    if isinstance(model, ImageModel):
        cfg = with_stated_pixel_range(cfg, model.value_range)
    datamodule = instantiate_data(cfg.data)
    # As Lightning does: the hook first (a seq2seq model builds its network from the
    # vocabularies stored there), then the weights, checked to fit before they are loaded.
    model.on_load_checkpoint(state)
    check_checkpoint_fits(model, checkpoint, state)
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model, datamodule, cfg


def _check_saved_config(cfg: DictConfig, run: RunDir, trust_remote_code: bool) -> None:
    parts = {"model": cfg.model, "data": cfg.get("data")}
    errors = target_errors({k: OmegaConf.to_container(v) for k, v in parts.items() if v})
    if cfg.model.get("trust_remote_code") and not trust_remote_code:
        errors.append(
            "model.trust_remote_code=true: this run's model runs code from the Hugging Face hub; "
            "load it from Python with genlab.load_run(run_dir, trust_remote_code=True) if you "
            "trust it"
        )
    if errors:
        raise GenlabError("\n".join(f"{run.path / RunDir.CONFIG}: {e}" for e in errors))


def with_stated_pixel_range(saved: DictConfig, value_range: Sequence[float]) -> DictConfig:
    """A saved config in today's form. Runs made before model configs stated their pixel range
    saved `data.value_range: auto` (the datamodule asked the model being trained): that is
    `value_range`, the range the model works in, stated in both groups as configs are today."""
    if saved.get("data") is None or saved.data.get("value_range") != "auto":
        return saved
    upgraded = saved.copy()
    upgraded.data.value_range = list(value_range)
    upgraded.model.value_range = list(value_range)
    return upgraded


def load_pretrained(name: str) -> L.LightningModule:
    """genlab's wrapper of a hub model (name or local directory): Seq2Seq for encoder-decoders,
    else GPT2."""
    from transformers import AutoConfig

    from genlab.models.gpt2 import GPT2
    from genlab.models.seq2seq import Seq2Seq

    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise GenlabError(
            f"cannot load model.pretrained={name} ({err}); it needs internet, a Hugging Face "
            f"cache or a local directory"
        ) from None
    model = Seq2Seq(pretrained=name) if config.is_encoder_decoder else GPT2(pretrained=name)
    return model.eval()
