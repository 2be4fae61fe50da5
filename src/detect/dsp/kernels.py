"""Compiled inner loops of the streaming steps (numba, ``cache=True``).

Each kernel walks the traces (or readings) of one block in order and carries its state in
small arrays owned by the calling step, so a block split anywhere gives the same result.
Vector work over samples stays inside the kernel; there is no Python loop per trace.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def first_break(trace: np.ndarray, i0: int, i1: int, threshold: float) -> float:
    """Sub-sample index where ``|x - mean|`` first reaches ``threshold * max`` in [i0, i1).

    NaN when the trace is flat in the window.
    """
    n = trace.shape[0]
    mean = 0.0
    for k in range(n):
        mean += trace[k]
    mean /= n
    peak = 0.0
    for k in range(i0, i1):
        a = abs(trace[k] - mean)
        if a > peak:
            peak = a
    if peak <= 0.0:
        return np.nan
    level = threshold * peak
    prev = abs(trace[i0] - mean)
    if prev >= level:
        return float(i0)
    for k in range(i0 + 1, i1):
        a = abs(trace[k] - mean)
        if a >= level:
            return k - 1 + (level - prev) / (a - prev)
        prev = a
    return np.nan


@numba.njit(cache=True, nogil=True)
def time_zero_stream(
    data: np.ndarray,
    i0: int,
    i1: int,
    threshold: float,
    alpha: float,
    target: int,
    max_shift: int,
    fallback: float,
    state: np.ndarray,
    out: np.ndarray,
    picks: np.ndarray,
) -> None:
    """Pick, smooth (EMA over traces) and shift each trace so time zero lands on ``target``.

    ``state[0]`` is the smoothed pick (NaN before the first trace). Samples shifted in
    from beyond the trace take the edge value, so no step appears at the end.
    """
    n_tr, n = data.shape
    s = state[0]
    for j in range(n_tr):
        p = first_break(data[j], i0, i1, threshold)
        picks[j] = p
        if np.isnan(p):
            p = fallback if np.isnan(s) else s
        if np.isnan(s):
            s = p
        else:
            s += alpha * (p - s)
        shift = int(np.floor(s + 0.5)) - target
        if shift > max_shift:
            shift = max_shift
        elif shift < -max_shift:
            shift = -max_shift
        row = data[j]
        dst = out[j]
        for k in range(n):
            src = k + shift
            if src < 0:
                src = 0
            elif src >= n:
                src = n - 1
            dst[k] = row[src]
    state[0] = s


@numba.njit(cache=True, nogil=True)
def background_ema(
    data: np.ndarray,
    position_m: np.ndarray,
    length_m: float,
    length_traces: float,
    state_bg: np.ndarray,
    state_scalar: np.ndarray,
    out: np.ndarray,
) -> None:
    """Subtract a causal moving background that advances with distance (or traces).

    The background of trace j excludes trace j. Its update weight is the distance moved
    since the last trace over ``length_m`` (a head held still over a target does not fade
    it); where positions are unknown each trace counts as ``length_m / length_traces``.
    Until ``length_m`` of data is in, it is the plain running mean.
    ``state_scalar`` = [accumulated weight, last finite position, traces seen].
    """
    n_tr, n = data.shape
    nominal = length_m / length_traces
    w_acc = state_scalar[0]
    last_pos = state_scalar[1]
    seen = state_scalar[2]
    for j in range(n_tr):
        row = data[j]
        dst = out[j]
        pos = position_m[j]
        if seen == 0.0:
            for k in range(n):
                state_bg[k] = row[k]
                dst[k] = 0.0
            w_acc = nominal
            seen = 1.0
            if not np.isnan(pos):
                last_pos = pos
            continue
        if np.isnan(pos) or length_traces <= 0.0:
            w = nominal
        elif np.isnan(last_pos):
            w = nominal
            last_pos = pos
        else:
            w = abs(pos - last_pos)
            last_pos = pos
        for k in range(n):
            dst[k] = row[k] - state_bg[k]
        if w > 0.0:
            w_acc = min(w_acc + w, length_m)
            a = w / w_acc
            for k in range(n):
                state_bg[k] += a * (row[k] - state_bg[k])
        seen += 1.0
    state_scalar[0] = w_acc
    state_scalar[1] = last_pos
    state_scalar[2] = seen


@numba.njit(cache=True, nogil=True)
def baseline_track(
    data: np.ndarray,
    alpha: float,
    noise_alpha: float,
    threshold: float,
    max_hold: int,
    warmup: int,
    noise_floor: float,
    state_base: np.ndarray,
    state_noise: np.ndarray,
    state_scalar: np.ndarray,
    out: np.ndarray,
    held: np.ndarray,
) -> None:
    """Slow baseline per channel that freezes while a target is over the head.

    A reading is "signal" when any channel departs from its baseline by more than
    ``threshold`` times that channel's running noise; then baseline and noise hold still
    for at most ``max_hold`` readings, after which the baseline snaps to the current
    reading (a step change of soil cannot freeze it for ever). No hold during the first ``warmup``
    readings, while the noise estimate settles. ``state_scalar`` = [readings seen, hold run].
    """
    n_r, n_c = data.shape
    seen = state_scalar[0]
    run = state_scalar[1]
    for i in range(n_r):
        row = data[i]
        if seen == 0.0:
            for c in range(n_c):
                state_base[c] = row[c]
                state_noise[c] = noise_floor
        hit = False
        for c in range(n_c):
            d = row[c] - state_base[c]
            out[i, c] = d
            if abs(d) > threshold * max(state_noise[c], noise_floor):
                hit = True
        if hit and seen >= warmup:
            run += 1.0
            held[i] = True
            if run > max_hold:
                run = 0.0
                for c in range(n_c):
                    state_base[c] = row[c]
        else:
            run = 0.0
            held[i] = False
            a = max(alpha, 1.0 / (seen + 1.0))
            na = max(noise_alpha, 1.0 / (seen + 1.0))
            for c in range(n_c):
                d = row[c] - state_base[c]
                state_base[c] += a * d
                state_noise[c] += na * (abs(d) * 1.2533141373155001 - state_noise[c])
        seen += 1.0
    state_scalar[0] = seen
    state_scalar[1] = run


@numba.njit(cache=True, nogil=True)
def adaptive_ground_balance(
    data: np.ndarray,
    sig: np.ndarray,
    alpha: float,
    state: np.ndarray,
    out: np.ndarray,
    beta_out: np.ndarray,
) -> None:
    """Whiten the soil direction: ``y = x - beta (x.s) s`` with beta from running statistics.

    With noise of variance n in every gate direction and soil adding variance v along the
    unit signature s, the whitening map shrinks the s component by sqrt(n / (n + v)):
    beta = 1 - sqrt(n / var_s) (0 on quiet soil, -> 1 on magnetic soil). var_s is the
    running variance of x.s, n the mean running variance of the other directions, both
    EMAs over past readings only. ``state`` = [seen, mean_s, var_s, noise, mean_r...].
    """
    n_r, n_c = data.shape
    seen = state[0]
    for i in range(n_r):
        row = data[i]
        c = 0.0
        for k in range(n_c):
            c += row[k] * sig[k]
        if seen == 0.0:
            state[1] = c
            state[2] = 0.0
            state[3] = 0.0
            for k in range(n_c):
                state[4 + k] = row[k] - c * sig[k]
        var_s = state[2]
        noise = state[3]
        beta = 0.0
        if var_s > noise and var_s > 0.0:
            beta = 1.0 - np.sqrt(noise / var_s)
        beta_out[i] = beta
        for k in range(n_c):
            out[i, k] = row[k] - beta * c * sig[k]
        a = max(alpha, 1.0 / (seen + 1.0))
        d = c - state[1]
        state[1] += a * d
        state[2] += a * (d * d - state[2])
        acc = 0.0
        for k in range(n_c):
            r = row[k] - c * sig[k]
            dr = r - state[4 + k]
            state[4 + k] += a * dr
            acc += dr * dr
        state[3] += a * (acc / max(n_c - 1, 1) - state[3])
        seen += 1.0
    state[0] = seen
