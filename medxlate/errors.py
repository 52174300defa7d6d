"""Exception types a user can cause, each tied to one documented exit code.

The CLI catches :class:`MedxlateError`, prints its message on one line and exits
with ``exit_code``. Anything else is an internal error (exit 1).
"""


class MedxlateError(Exception):
    """Base class; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class UsageError(MedxlateError):
    """Options that contradict each other or name something that does not exist."""

    exit_code = 2


class InputError(MedxlateError):
    """An input is missing, unreadable or invalid (bad file, 4D volume, NaNs, series gap...)."""

    exit_code = 3


class OutputError(MedxlateError):
    """An output cannot be written, or exists and --overwrite was not given."""

    exit_code = 4


class WeightsError(MedxlateError):
    """Weights are missing, corrupt (hash mismatch) or incompatible with the model."""

    exit_code = 5


class ThresholdError(MedxlateError):
    """An evaluation threshold given with --fail-if was not met."""

    exit_code = 6


class UnfamiliarInputError(InputError):
    """With --strict-inputs: an input lies outside what the model was trained on (wrong
    modality or contrast, another region, coarse slices, intensities unlike training's)."""

    exit_code = 7


class PartialFailure(MedxlateError):
    """A batch run finished, but some cases failed (each one was reported)."""

    exit_code = 8


EXIT_CODES = {
    0: "success",
    1: "internal error (a bug: please report it, rerun with --debug for the traceback)",
    2: "usage error (bad option or argument)",
    3: "input missing, unreadable or invalid",
    4: "output not writable, or exists without --overwrite",
    5: "weights missing, corrupt or incompatible",
    6: "evaluation threshold failed (--fail-if)",
    7: "input outside what the model was trained on (--strict-inputs)",
    8: "partial success: some cases of a batch failed",
}
