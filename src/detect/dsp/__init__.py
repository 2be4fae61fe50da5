"""Signal processing: pure functions on arrays plus streaming steps that carry their state.

* :mod:`.chain` - ``build_chain(steps, sensor)`` from ``configs/dsp/*.yaml``; fuses linear
  fast-time GPR steps into one matrix; refuses offline-only steps when streaming.
* :mod:`.gpr` - time zero, DC/dewow, band-pass, gains, AGC, envelope, resampling,
  moving background (streaming), mean/median/SVD background (offline), stacking.
* :mod:`.emi` - mains notch, low/high-pass, drift baseline, ground balance, decay features.
* :mod:`.grid` - streaming resampler onto a regular along-track grid (GPR and EMI).
* :mod:`.migration` - Stolt and Kirchhoff migration, F-K fan filter (offline).
* :mod:`.velocity` - hyperbola fitting and semblance velocity scans.
* :mod:`.kernels` - the compiled (numba) inner loops of the streaming steps.
"""
