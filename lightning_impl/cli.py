"""What the project's LightningCLI entry points share: a default recipe from configs/, the checkpoint, timer,
finite-loss and figure callbacks, checks of the whole run before any work starts, fit -> test the best checkpoint ->
metrics.json, resuming a run in its own folder, and one-line errors."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from unittest import mock

import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.exceptions import SIGTERMException

from core import configs, precision
from lightning_impl import checkpoints
from lightning_impl.card import ModelCard, net_config
from lightning_impl.callbacks import EpochTimer, FiniteLoss, NonFiniteLossError, SeedEachEpoch
from lightning_impl.run_figures import RunFigures
from core.ranges import RangeError, check_ranges
from core.runs import data_errors, fail, new_run_dir, strict, write_json


class ConfigurationError(ValueError):
    """A run that cannot be trained as configured; the message names the option."""


def as_defaults(config: dict, prefix: str = "") -> dict:
    """A recipe as parser defaults: dotted keys, a class (class_path + init_args) kept whole."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and "class_path" not in value:
            out.update(as_defaults(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def one_line(message: str) -> str:
    """jsonargparse's many-line report of a value it refused, as one line: ``--key value: expected int or null``
    (the report lists every type it tried, each on a line of its own, below the whole usage text)."""
    keys = re.findall(r'Parser key "([^"]+)"', message)
    nested = re.search(r"NestedArg\(key='([^']*)', val='(.*)'\)\s*$", message, re.M)
    # An init_args value (--data.init_args.batch_size): the class's own refusal is the line with "Got value".
    lines = [line for line in message.splitlines() if "Got value" in line] if nested else message.splitlines()
    expected = list(dict.fromkeys({"NoneType": "null"}.get(t, t) for line in lines
                                  for t in re.findall(r"Expected an? <class '(?:[\w.]+\.)?(\w+)'>", line)))
    if keys and expected:
        if nested:
            key, shown = f"{keys[0]}.init_args.{nested.group(1)}", nested.group(2)
        else:  # a class's argument (--model.optimizer.init_args.lr) is named by the inner key
            given = re.findall(r"(?:Given value|Got value): (.*?)(?:\. Got value: .*)?\s*$", message, re.M)
            key = keys[0] if len(keys) == 1 else f"{keys[0]}.init_args.{keys[-1]}"
            shown = given[-1] if given else "?"
        return f"--{key} {shown}: expected {' or '.join(expected)}"
    problem = re.search(r"Problem with given class_path '([\w.]+)':\s*\n\s*(.+)", message)
    if keys and problem:  # a class's argument it does not have (a typo): the class's own line
        reason = problem.group(2).strip()
        if nested:
            reason = f"--{keys[0]}.init_args.{nested.group(1)}: {reason}"
        return f"{reason} (by {problem.group(1).rsplit('.', 1)[-1]})"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return "; ".join(lines[:3])


class OneLineParser(LightningArgumentParser):
    """LightningCLI's parser refusing in one line (``error: <what> (see --help)``), not below the ~80 lines of
    usage text. Nested parsers that try a type and catch the refusal (exit_on_error off) are left as they are."""

    def error(self, message: str, ex: Exception | None = None):
        if not self.exit_on_error:
            return super().error(message, ex)
        sys.stderr.write(f"error: {one_line(message)} (see --help)\n")
        sys.exit(2)


class ProjectCLI(LightningCLI):
    """LightningCLI with ``--checkpoint.*`` (ModelCheckpoint), ``--timer`` (EpochTimer), ``--finite_loss``,
    ``--epoch_seed`` and ``--figures.*`` (RunFigures) arguments, and the default recipe ``configs/<recipe>`` as its defaults (a --config and flags
    are merged over it). Checkpoints are read through lightning_impl.checkpoints (data only, never code)."""

    recipe: str

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(EpochTimer, "timer")
        parser.add_lightning_class_args(FiniteLoss, "finite_loss")
        parser.add_lightning_class_args(SeedEachEpoch, "epoch_seed")
        parser.add_lightning_class_args(RunFigures, "figures")
        parser.set_defaults(as_defaults(configs.load(self.recipe)))

    @property
    def run_config(self):
        """This run's parsed config (the subcommand's, when the CLI has subcommands)."""
        return self.config.get(self.subcommand) if self.subcommand else self.config

    def _set_seed(self) -> None:
        # Lightning seeds before before_instantiate_classes, refusing a bad seed in a line that names no option.
        check_ranges(self.run_config)
        super()._set_seed()

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        # The run's seed as data, handed to what draws from it: the epoch order and the per-epoch reseeding. Never
        # recovered from torch's global state, which anything else in the process may have reseeded since.
        seed = self.run_config.get("seed_everything")
        if isinstance(seed, int) and not isinstance(seed, bool):
            if hasattr(self.datamodule, "seed"):
                self.datamodule.seed = seed
            for callback in self.trainer.callbacks:
                if isinstance(callback, SeedEachEpoch):
                    callback.seed = seed

    def before_instantiate_classes(self) -> None:
        # An unset precision (the recipes that profit from bf16 leave it so): what this machine computes natively
        trainer = self.run_config.trainer
        trainer.precision = precision.resolve(trainer.precision, trainer.accelerator)


def resume_args(args: list[str], resume_task: str | None = None) -> tuple[list[str], Path | None, int | None]:
    """``--resume RUN_DIR [flags]`` -> the run's own config and its folder as the logger's; its last.ckpt and the
    epoch that checkpoint finished.

    Flags after it still apply (``--trainer.max_epochs 20`` trains on); everything else is the saved config."""
    if "--resume" not in args:
        return args, None, None
    i = args.index("--resume")
    if i + 1 >= len(args):
        raise ConfigurationError("--resume: expected a run folder (runs/<name>/version_<n>)")
    run_dir, rest = Path(args[i + 1]), args[:i] + args[i + 2 :]
    config, last = run_dir / "config.yaml", run_dir / "checkpoints" / "last.ckpt"
    if not config.is_file() and (run_dir / "recipe.yaml").is_file():
        raise ConfigurationError(f"--resume {run_dir}: this is a Keras run: resume it with keras_ref.train or "
                                 "keras_ref.train_denoiser --resume")
    if config.is_file():
        check_config_files(["--config", str(config)], resume_task)
    if (run_dir / "metrics.json").is_file() and config.is_file():
        _train_on_finished(run_dir, config, rest)
    for needed in (config, last):
        if not needed.is_file():
            raise ConfigurationError(f"--resume {run_dir}: no {needed.relative_to(run_dir)} there, so nothing to resume "
                                     "(a run folder holds config.yaml and checkpoints/last.ckpt once an epoch has finished)")
    last_epoch = checkpoints.load(last)["epoch"]  # refuses, by name, a file cut short or holding more than data
    return ["--config", str(config), *_same_folder(config, run_dir), *rest], last, last_epoch


def _flag_value(args: list[str], flag: str) -> str | None:
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def _train_on_finished(run_dir: Path, config: Path, rest: list[str]) -> None:
    """A finished run is resumed only to train on (more epochs than it has): resumed as it is, it would test
    again and overwrite its own record. Its record is kept beside, as metrics.epochs_<n>.json."""
    from core.runs import read_record

    done = read_record(run_dir / "metrics.json", "run record").get("epochs")
    wanted = _flag_value(rest, "--trainer.max_epochs")
    if wanted is None:
        wanted = ((yaml.safe_load(config.read_text()) or {}).get("trainer") or {}).get("max_epochs")
    try:
        more = int(wanted) > int(done)
    except (TypeError, ValueError):
        more = False
    if not more:
        raise ConfigurationError(f"--resume {run_dir}: this run finished its {done} epochs (metrics.json), so there "
                                 f"is nothing to resume; to train on, add --trainer.max_epochs N with N > {done}")
    (run_dir / "metrics.json").replace(run_dir / f"metrics.epochs_{done}.json")


def _same_folder(config: Path, run_dir: Path) -> list[str]:
    """Flags that point the run's CSV logger at ``run_dir`` again. Dotted flags reach only the last of several
    loggers (``--trainer.logger+=...``), so a list is given whole, its CSV logger's folder changed."""
    where = {"save_dir": str(run_dir.parent.parent), "name": run_dir.parent.name, "version": run_dir.name}
    loggers = ((yaml.safe_load(config.read_text()) or {}).get("trainer") or {}).get("logger")
    if isinstance(loggers, list):
        for logger in loggers:
            if isinstance(logger, dict) and str(logger.get("class_path", "")).endswith("CSVLogger"):
                logger["init_args"] = {**(logger.get("init_args") or {}), **where}
        return ["--trainer.logger", json.dumps(loggers)]
    return [arg for key, value in where.items() for arg in (f"--trainer.logger.init_args.{key}", value)]


def _keep_earlier_rows(cli: ProjectCLI, epoch: int) -> None:
    """Lightning's CSVLogger deletes the metrics.csv it finds when it first writes; a resumed run puts back the
    rows of the epochs its checkpoint holds (later rows are logged again)."""
    logger = cli.trainer.logger
    if not isinstance(logger, CSVLogger) or not Path(logger.log_dir, "metrics.csv").is_file():
        return
    with open(Path(logger.log_dir, "metrics.csv"), newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = [r for r in reader if r.get("epoch") and int(float(r["epoch"])) <= epoch]
    with warnings.catch_warnings():  # "Previous log files in this directory will be deleted": put back below
        warnings.filterwarnings("ignore", message="Experiment logs directory")
        writer = logger.experiment  # created now: this is when it deletes the old file
    with open(writer.metrics_file_path, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=header)
        out.writeheader()
        out.writerows(rows)
    writer.metrics_keys = list(header)


def csv_first(trainer) -> None:
    """Put the CSV logger first among several (``--trainer.logger+=...TensorBoardLogger``): the Trainer's log_dir
    and the checkpoints follow the first logger, and the run folder is the CSV logger's, where metrics.csv is."""
    loggers = trainer.loggers
    if len(loggers) > 1:
        trainer.loggers = sorted(loggers, key=lambda logger: not isinstance(logger, CSVLogger))


def make_cli(cli_class: type[ProjectCLI], model, data, args: list[str] | None, **kwargs) -> ProjectCLI:
    """Parse ``args`` (None: the command line) over the CLI's default recipe; ``cli.ckpt_path`` is set when resuming.

    Given ``args``, the command line belongs to the caller (the ablation ladder, the ensemble), so it is hidden
    while LightningCLI parses, which would otherwise warn that it is ignored; only while parsing, since a DDP
    launch re-runs the caller's own command line.
    """
    own = sys.argv[1:] if args is None else list(args)
    task = configs.recipe_task(configs.load(cli_class.recipe))
    parsed, ckpt_path, last_epoch = resume_args(own, task)
    check_config_files(parsed, task)
    with mock.patch.object(sys, "argv", sys.argv[:1]):
        cli = cli_class(
            model, data, run=False, args=parsed, save_config_kwargs={"overwrite": ckpt_path is not None},
            parser_class=OneLineParser, **kwargs,
        )
    cli.trainer.strategy.checkpoint_io = checkpoints.SafeCheckpointIO()  # data, never code; saves never torn
    csv_first(cli.trainer)
    cli.ckpt_path = ckpt_path
    cli.claimed = claim_run_dir(cli.trainer.logger) if ckpt_path is None else None
    if ckpt_path is not None:
        _keep_earlier_rows(cli, last_epoch)
    return cli


def check_config_files(args: list[str], task: str | None = None) -> None:
    """Every ``--config FILE`` a readable YAML mapping, or a refusal naming the file -- jsonargparse would name
    none, or quote what it read (a file that is not a recipe, ``--config /etc/passwd``, is echoed line by line)."""
    for i, arg in enumerate(args):
        if arg in ("--config", "-c") and i + 1 < len(args):
            path = Path(args[i + 1])
        elif arg.startswith("--config="):
            path = Path(arg.split("=", 1)[1])
        else:
            continue
        if not path.is_file():
            raise ConfigurationError(f"--config {path}: {'a folder, not a file' if path.is_dir() else 'no such file'}")
        try:
            value = yaml.safe_load(path.read_text())
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigurationError(f"--config {path}: cannot be read ({type(err).__name__}: {err})") from None
        except yaml.YAMLError as err:
            raise ConfigurationError(f"--config {path}: not valid YAML ({str(err).splitlines()[0]})") from None
        if value is None:
            continue
        unknown = [k for k in value if k not in SECTIONS] if isinstance(value, dict) else [None]
        if unknown and not all(isinstance(k, str) and k.isidentifier() for k in unknown):
            raise ConfigurationError(f"--config {path}: not a recipe (a YAML mapping of trainer, model, data, ...); "
                                     "see configs/ for examples")  # and nothing of what it holds is echoed
        if unknown:
            raise ConfigurationError(f"--config {path}: unknown section {unknown[0]!r}; a recipe holds "
                                     f"{', '.join(SECTIONS)}")
        found = configs.recipe_task(value)
        if task is not None and found not in (None, task):
            other = "lightning_impl.train_denoiser" if found == "denoiser" else "lightning_impl.train"
            raise ConfigurationError(f"--config {path}: this is a {found} recipe: use {other}")


# The top-level keys of a recipe: LightningCLI's own and the project's callbacks (ProjectCLI.add_arguments_to_parser).
SECTIONS = ("seed_everything", "trainer", "model", "data", "optimizer", "lr_scheduler", "ckpt_path", "checkpoint",
            "timer", "finite_loss", "epoch_seed", "figures")


def claim_run_dir(logger) -> Path | None:
    """Give a new run its version_<n> folder now, by mkdir (runs.new_run_dir), instead of letting the CSV logger
    count the folders when it first writes: two runs started together into one runs folder would both count the
    same n, and the second die on the first's config.yaml. Only the first process claims (under DDP the others'
    folder is the first's, broadcast by the Trainer); an explicit --trainer.logger.init_args.version is kept."""
    if not isinstance(logger, CSVLogger) or logger._version is not None:
        return None
    if int(os.environ.get("LOCAL_RANK", 0)) != 0 or int(os.environ.get("NODE_RANK", 0)) != 0:
        return None
    run = new_run_dir(logger.save_dir, logger.name)
    logger._version = int(run.name.removeprefix("version_"))
    return run


def reason(err: Exception) -> str:
    """The line that says what is wrong: jsonargparse wraps a constructor's own ValueError in a report of every
    type it tried ("Errors:\n  - <reason>\n  - Expected a <class 'NoneType'>"); the constructor's line is the one."""
    lines = str(err).splitlines()
    reasons = [l.strip()[2:] for l in lines if l.strip().startswith("- ") and not l.strip().startswith("- Expected a")]
    return reasons[0] if reasons else lines[0]


def preflight(cli: ProjectCLI) -> None:
    """Refuse, before any data is loaded or step taken, a run that would train nothing or cannot train at all."""
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    if trainer.max_epochs == 0:
        raise ConfigurationError("--trainer.max_epochs 0: the run would train nothing (at least 1 epoch)")
    if trainer.max_steps == 0:
        raise ConfigurationError("--trainer.max_steps 0: the run would train nothing (at least 1 step, or -1: no limit)")
    if trainer.limit_train_batches == 0:
        raise ConfigurationError("--trainer.limit_train_batches 0: the run would train nothing (at least 1 batch, "
                                 "or a fraction in (0, 1])")
    unbounded = trainer.max_epochs in (None, -1) and trainer.max_steps in (None, -1)
    if unbounded and getattr(model.hparams, "schedule", None) == "warmup_cosine":
        raise ConfigurationError(f"--trainer.max_epochs {trainer.max_epochs}: the warmup_cosine schedule spans the "
                                 "whole run, so it needs a number of epochs (or --model.schedule constant)")
    try:
        model.optimizer(model.parameters())
    except (ValueError, TypeError) as err:
        raise ConfigurationError(f"--model.optimizer: {err}") from None
    shape = getattr(data, "input_shape", None)
    if shape is not None:
        try:
            with torch.no_grad():
                out = model.net.eval()(torch.zeros(2, *shape))
        except RuntimeError as err:
            raise ConfigurationError(
                f"--model.net {type(model.net).__name__} does not take {data.dataset_name} images "
                f"({'x'.join(map(str, shape))}): {str(err).splitlines()[0]}; choose a net for this dataset "
                "(e.g. a recipe in configs/ for it)") from None
        finally:
            model.net.train()
        classes = getattr(data, "num_classes", None)
        if isinstance(classes, int) and out.ndim == 2 and out.shape[1] != classes:
            raise ConfigurationError(
                f"--model.net {type(model.net).__name__} has {out.shape[1]} outputs, but {data.dataset_name} has "
                f"{classes} classes; leave num_classes to the data (the recipes take it from data.num_classes)")


def fit_then_test_best(cli: ProjectCLI) -> tuple[dict[str, float], str | None, EpochTimer, float]:
    """Fit (from the run's last.ckpt when resuming), then test the best checkpoint (chosen on validation):
    (test metrics, checkpoint, timer, fit seconds)."""
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    # Every checkpoint carries what prediction needs without the data (lightning_impl.card, lightning_impl.predict).
    trainer.callbacks.append(ModelCard(net_config(cli)))
    timer = next(c for c in trainer.callbacks if isinstance(c, EpochTimer))
    start = time.perf_counter()
    with interruptions(trainer):
        trainer.fit(model, datamodule=data, ckpt_path=getattr(cli, "ckpt_path", None))
    fit_s = time.perf_counter() - start
    if trainer.interrupted:
        raise KeyboardInterrupt
    # A resumed run's training time is the whole run's: the part before the interruption travels in the checkpoint.
    fitted = (list(timer.epoch_times), list(timer.images_per_sec), timer.resumed_s + fit_s)
    checkpoint = trainer.checkpoint_callback.best_model_path or None
    start = time.perf_counter()
    with interruptions(trainer):
        (results,) = trainer.test(model, datamodule=data, ckpt_path=checkpoint)
    test_s = time.perf_counter() - start  # prediction time of the whole test set (the report sets it beside HOG+SVM's)
    # Testing a checkpoint restores the callbacks' state saved in it (the best epoch's, perhaps not the last): the
    # record keeps the state the fit ended with.
    timer.epoch_times, timer.images_per_sec, timer.resumed_s = fitted[0], fitted[1], fitted[2] - fit_s
    return {**{k: float(v) for k, v in results.items()}, "test_s": test_s}, checkpoint, timer, fitted[2]


class Terminated(Exception):
    """SIGTERM reached the run: Lightning stopped it after the current step."""


@contextlib.contextmanager
def interruptions(trainer):
    """Lightning ends a run that got SIGTERM with a SystemExit of status 0, and one interrupted by Ctrl-C with
    sys.exit(1): either would read as an ordinary exit. Both become exceptions that `run_cli` reports with the
    resume hint and the conventional status (143, 130)."""
    try:
        yield
    except SIGTERMException:
        raise Terminated from None
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise


SCAFFOLD = ("config.yaml", "hparams.yaml", "metrics.csv")  # what a run writes before its first checkpoint


def _release(cli) -> bool:
    """A run refused before it saved a checkpoint gives back the folder it claimed (with the config and empty logs
    written at the start of the fit); True when it did. A folder holding anything else is kept."""
    run = getattr(cli, "claimed", None)
    if run is None or not run.is_dir():
        return False
    found = [p for p in run.rglob("*") if p.is_file()]
    if any(p.relative_to(run).as_posix() not in SCAFFOLD for p in found):
        return False
    for p in found:
        p.unlink()
    for folder in sorted((p for p in run.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        folder.rmdir()
    run.rmdir()
    return True


def run_cli(make: Callable[[], ProjectCLI], metrics_of: Callable[[ProjectCLI], dict], summary: Sequence[str]) -> dict:
    """Build the CLI, check the run, train and test; write metrics.json into the run folder, print `summary` and the
    folder last. Every problem with the configuration, the data or a checkpoint ends in one line, status 2."""
    torch.set_float32_matmul_precision("high")
    try:
        with data_errors():
            cli = make()
            preflight(cli)
            cli.preflight_done = True
            metrics = metrics_of(cli)
    except (ConfigurationError, RangeError, checkpoints.CheckpointError) as err:
        _release(locals().get("cli"))
        fail(str(err))
    except MisconfigurationException as err:  # Lightning's own refusal (a monitor key, an accelerator, a limit)
        built = locals().get("cli")
        released = _release(built)
        kept = (f"; the checkpoints written so far are kept in {built.trainer.log_dir}"
                if getattr(built, "preflight_done", False) and not released else "")
        fail(f"{str(err).strip().splitlines()[0]} (see --help){kept}")
    except (ValueError, TypeError) as err:  # a class refused its arguments while the CLI built it
        if "cli" in locals() and getattr(cli, "preflight_done", False):
            raise  # past the checks: a bug, not a configuration; keep the traceback
        _release(locals().get("cli"))
        fail(reason(err))
    except NonFiniteLossError as err:
        fail(f"{err}; the last good checkpoint is kept in {cli.trainer.log_dir}/checkpoints", status=1)
    except (KeyboardInterrupt, Terminated) as err:
        what, status = ("terminated (SIGTERM)", 143) if isinstance(err, Terminated) else ("interrupted", 130)
        where = f"; go on with --resume {cli.trainer.log_dir}" if "cli" in locals() else ""
        fail(f"{what}: the run is unfinished (no metrics.json), the checkpoints written so far are kept{where}",
             status=status)
    metrics = strict({**metrics, "finished": True})  # what metrics.json holds: strict JSON, no NaN
    run_dir = Path(cli.trainer.log_dir)  # a collective under DDP: every process must ask
    if cli.trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics)
        print(json.dumps({k: metrics[k] for k in summary}))
        print(run_dir.resolve())
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # Left to interpreter exit, gloo's threads were at times torn down mid-flight: an abort (rc -6)
        # after a finished run.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return {**metrics, "run_dir": str(run_dir.resolve())}  # where it is, as the Keras trainers return it too
