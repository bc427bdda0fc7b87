"""The validation layer (torch, matplotlib): experiments that test the theory, and the report.

Public names
------------
validate, run_experiment, EXPERIMENT_NAMES
    Run ``covariance``, ``sharpness``, ``batch-size``, ``learning-rate``, ``selection``,
    ``probe`` (or ``"all"``), resumably, writing JSON, CSV, figures and a verdict.
Experiment, register, get_experiment, experiment_names
    The experiment registry: an experiment is one registered object (typed points with a
    versioned resume key, an analysis with typed cases, figures, a report section).
Point, Result, Analysis, Case, Row, added
    The typed pieces an experiment is made of (docs: Architecture).
make_executor, Executor
    Local processes (default), serial, or a Dask cluster (scheduler address or LocalCluster).
PointStore, run_sweep
    The checksummed, resumable store of finished points and the sweep that shares its points
    with concurrent sweeps on the same folder.
SchedulerError, OutputError, RecordWarning
    A Dask scheduler unreachable or lost; an output folder that cannot be written; a line of
    ``points.jsonl`` rejected and recomputed.
landscape, LANDSCAPES, custom_landscape, measure_rate
    Test landscapes with real minibatch noise, a user's own landscape (any loss, any minibatch
    noise factor S(x), diagonal or not), and the batched escape-rate measurement.
load_dataset, Dataset, make_model, train_to_minimum
    Small models and shipped/synthetic data sets (``Dataset``: inputs and labels, also what
    ``probe`` accepts as data).
compare_laws, poisson_fit
    Poisson fits of rate laws and the exponential-vs-polynomial decision.
run_report
    The HTML report (``flatminima report``).
probe, ProbeResult, HessianTop, NoiseFit, Prediction, EscapeMeasurement
    Probe a user's trained network: top Hessian eigenpairs, gradient noise against H/B, the
    theory's escape predictions and (``measure=True``) a measured escape rate.
plot_tau, plot_comparison, save_figure
    Figures (matplotlib) of the derived τ and of measured against predicted rates; PNG/PDF/SVG.
"""

from flatminima._lazy import refuse_source_folder

# installed as flatminima.validation; the bare folder would be a second copy of every class
refuse_source_folder(__name__, "validation")

from ._custom_landscape import custom_landscape
from ._dynamics import RateMeasurement, measure_rate
from ._fits import PoissonFit, ScalingComparison, compare_laws, poisson_fit
from ._landscapes import LANDSCAPES, Landscape, landscape
from ._models import DATASETS, Dataset, load_dataset, make_model, train_to_minimum
from ._probe import (
    EscapeMeasurement,
    HessianTop,
    NoiseFit,
    Prediction,
    ProbeResult,
    probe,
)
from ._registry import (
    Analysis,
    Case,
    Experiment,
    Point,
    Result,
    Row,
    added,
    experiment_names,
    get_experiment,
    register,
)
from ._runner import EXPERIMENT_NAMES, run_experiment, validate
from ._store import OutputError, PointStore, RecordWarning
from ._sweep import Executor, SchedulerError, make_executor, run_sweep
from .plots import plot_comparison, plot_tau, save_figure
from .report import run_report

__all__ = [
    "DATASETS",
    "EXPERIMENT_NAMES",
    "LANDSCAPES",
    "Analysis",
    "Case",
    "Dataset",
    "EscapeMeasurement",
    "Executor",
    "Experiment",
    "HessianTop",
    "Landscape",
    "NoiseFit",
    "OutputError",
    "Point",
    "PointStore",
    "PoissonFit",
    "Prediction",
    "ProbeResult",
    "RateMeasurement",
    "RecordWarning",
    "Result",
    "Row",
    "ScalingComparison",
    "SchedulerError",
    "added",
    "compare_laws",
    "custom_landscape",
    "experiment_names",
    "get_experiment",
    "landscape",
    "load_dataset",
    "make_executor",
    "make_model",
    "measure_rate",
    "plot_comparison",
    "plot_tau",
    "poisson_fit",
    "probe",
    "register",
    "run_experiment",
    "run_report",
    "run_sweep",
    "save_figure",
    "train_to_minimum",
    "validate",
]
