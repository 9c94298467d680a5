"""The GSG part of the Statistics widget: the model chooser and the GSG rows of its table.

With "Gaussian + GSG" chosen, the fits also carry the multimodal generalized
sub-Gaussian model (:func:`napari_calcite_afm.stats.fit_frame` with
``increment_model="gsg"``): the plots overlay its densities (dashed green) and the table
shows its parameters below the Gaussian ones.
"""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox

__all__ = ["GSG_PARAMETERS", "increment_model_combo"]

#: Rows of the GSG part of the parameter table: (key, label, unit, meaning).
GSG_PARAMETERS = [
    ("gsg_alpha_A", "α_A (GSG)", "", "GSG shape in pits (A): 2 Gaussian, lower heavier-tailed"),
    ("gsg_sigma_A", "σ_A (GSG)", "nm", "std. dev. of the Gaussian field G in pits (A)"),
    ("gsg_rho_A", "ρ_A(s) (GSG)", "", "correlation of G at lag s in pits (A)"),
    ("gsg_alpha_B", "α_B (GSG)", "", "GSG shape on terraces (B)"),
    ("gsg_sigma_B", "σ_B (GSG)", "nm", "std. dev. of the Gaussian field G on terraces (B)"),
    ("gsg_rho_B", "ρ_B(s) (GSG)", "", "correlation of G at lag s on terraces (B)"),
    ("gsg_step_fraction_B", "steps_B(s)", "", "fraction of terrace pairs crossing a step"),
    ("ks_height_gsg", "KS heights (GSG)", "", "Kolmogorov-Smirnov, Z' vs the GSG mixture"),
    ("ks_increment_gsg", "KS increments (GSG)", "", "Kolmogorov-Smirnov, dZ(s) vs the GSG g"),
    ("better_increment_model", "better model", "", "the smaller increment KS at lag s"),
]  # fmt: skip


def increment_model_combo() -> QComboBox:
    """The chooser of the increment model (item data ``"gaussian"`` or ``"gsg"``)."""
    combo = QComboBox()
    combo.addItem("Gaussian mixture", "gaussian")
    combo.addItem("Gaussian + generalized sub-Gaussian (GSG)", "gsg")
    combo.setToolTip(
        "GSG: each mode a generalized sub-Gaussian field, step crossings a third kind of "
        "pair; its densities are drawn dashed green beside the Gaussian ones"
    )
    return combo
