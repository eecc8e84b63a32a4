"""Crystal generation metrics of CDVAE, DiffCSP and CrysBFN, one implementation, three conventions.

Modules, by concept: :mod:`.conventions` (protocol constants, where the papers differ),
:mod:`.smact_validity` (compositional validity), :mod:`.structures` (construction, structural
validity), :mod:`.fingerprints`, :mod:`.matching` (match rate, RMSE), :mod:`.coverage` (COV,
diversity), :mod:`.properties` (EMDs), :mod:`.assess` (per-crystal worker functions) and
:mod:`.evaluate` (full suites and the CSV entry point), :mod:`.samples` (flat metric names for
``metrics.json``: ``<metric>[_k<k>][@<convention>]``). Importing this package loads no pymatgen.

Values use the papers' table units: rates in %, RMSE dimensionless, EMDs in the property's unit.
"""

from replibench.families.metric_info import MetricInfo
from replibench.families.crystals.metrics.conventions import CONVENTIONS, Convention, get_convention
from replibench.families.crystals.metrics.evaluate import evaluate_crystal_files, evaluate_csp, evaluate_gen
from replibench.families.crystals.metrics.samples import evaluate_samples, flatten_evaluation, metric_info_for
from replibench.families.crystals.metrics.structures import CrystalArrays, arrays_from_lattice

METRICS: dict[str, MetricInfo] = {
    "match_rate": MetricInfo("max", "%", "test crystals matched by StructureMatcher(stol 0.5, ltol 0.3, angle_tol 10) "
                                         "among gated predictions (best of k for k samples)"),
    "rmse": MetricInfo("min", "dimensionless", "mean RMS displacement / (V/N)^(1/3) over matched test crystals only"),
    "validity": MetricInfo("max", "%", "generated crystals structurally and compositionally valid with fingerprints"),
    "struct_validity": MetricInfo("max", "%", "generated crystals with min distance >= 0.5 Å and volume >= 0.1 Å^3"),
    "comp_validity": MetricInfo("max", "%", "generated crystals passing SMACT charge neutrality + Pauling test "
                                            "(SMACT-2014 table)"),
    "cov_recall": MetricInfo("max", "%", "COV-R: test crystals within both fingerprint cutoffs of a generated one"),
    "cov_precision": MetricInfo("max", "%", "COV-P: generated crystals within both fingerprint cutoffs of a test one"),
    "cov_struc_recall": MetricInfo("max", "%", "COV-R with the structure cutoff only (CrysBFN)"),
    "cov_comp_recall": MetricInfo("max", "%", "COV-R with the composition cutoff only (CrysBFN)"),
    "cov_struc_precision": MetricInfo("max", "%", "COV-P with the structure cutoff only (CrysBFN)"),
    "cov_comp_precision": MetricInfo("max", "%", "COV-P with the composition cutoff only (CrysBFN)"),
    "amsd_recall": MetricInfo("min", "dimensionless", "mean nearest generated structure-fingerprint distance per test crystal"),
    "amsd_precision": MetricInfo("min", "dimensionless", "mean nearest test structure-fingerprint distance per generated crystal"),
    "amcd_recall": MetricInfo("min", "dimensionless", "mean nearest scaled composition-fingerprint distance per test crystal"),
    "amcd_precision": MetricInfo("min", "dimensionless", "mean nearest scaled composition-fingerprint distance per generated crystal"),
    "wdist_density": MetricInfo("min", "g/cm^3", "EMD of density, 1,000 valid generated vs test"),
    "wdist_num_elems": MetricInfo("min", "elements", "EMD of the number of distinct elements, 1,000 valid generated vs test"),
    "wdist_volume": MetricInfo("min", "Å^3", "EMD of cell volume, 1,000 valid generated vs test (CrysBFN)"),
    "wdist_prop": MetricInfo("min", "eV/atom", "EMD of formation energy predicted by a property model, both sides"),
    "comp_div": MetricInfo("max", "dimensionless", "mean pairwise scaled composition-fingerprint distance of valid samples"),
    "struct_div": MetricInfo("max", "dimensionless", "mean pairwise structure-fingerprint distance of valid samples"),
    # sampling cost, from the prediction file (not from the crystals): the CrysBFN efficiency claim
    "sampling_s_per_1000": MetricInfo("min", "s", "sampling wall time per 1,000 crystals on the evaluation device"),
    "nfe_per_crystal": MetricInfo("min", "network evaluations", "backbone forward passes each sampled crystal "
                                                                 "goes through (DiffCSP 2 x timesteps, CrysBFN steps)"),
}

__all__ = ["CONVENTIONS", "METRICS", "Convention", "CrystalArrays", "arrays_from_lattice", "evaluate_crystal_files", "evaluate_csp",
           "evaluate_gen", "evaluate_samples", "flatten_evaluation", "get_convention", "metric_info_for"]
