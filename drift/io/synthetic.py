"""A synthetic calcium-imaging recording with planted representational drift.

Model
-----
Each registered unit ``u`` has a tuning curve over ``S`` stimuli whose standardised
value at session time ``t`` (days) is

.. math::

    z_{us}(t) = \\sqrt{c_\\infty}\\, a_{us} + \\sqrt{1 - c_\\infty}\\, x_{us}(t),

with ``a`` a fixed standard normal part and ``x`` an Ornstein-Uhlenbeck process in time
(unit variance, correlation ``exp(-|dt| / drift_time_days)``). The population-vector
correlation between sessions therefore follows

.. math::

    \\rho(\\Delta t) = c_\\infty + (1 - c_\\infty)\\, e^{-|\\Delta t| / \\tau},

with ``c_inf = floor`` and ``tau = drift_time_days``. The mean response (dF/F) is
``baseline + scale * z``. Each session shows every stimulus once per trial, in random
order, for ``frames_per_stimulus`` frames, with grey frames (no stimulus, label NaN)
before each trial; the frame signal is the mean response of the frame's stimulus
(0 on grey), scaled by ``stationary_gain`` when the animal is not running, low-pass
filtered by a calcium kernel and corrupted by Gaussian noise. Running speed is a smooth
random trace; ``include`` marks the frames with speed above ``speed_threshold``. Each
unit is missed in a session with probability ``p_missing`` (never in all sessions) and the
cells of a session are stored in random order, as after cell detection; the registration
links them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from drift.io.recordings import SessionTimeseries

__all__ = ["SyntheticRecording", "synthetic_recording", "planted_pv_correlation"]


def planted_pv_correlation(
    lag_days: np.ndarray | float, drift_time_days: float, floor: float
) -> np.ndarray:
    """Expected population-vector correlation ``floor + (1 - floor) exp(-|lag| / tau)``.

    Parameters
    ----------
    lag_days : float or ndarray
        Time between sessions (days).
    drift_time_days : float
        Drift time constant ``tau`` (days).
    floor : float
        Asymptotic correlation ``c_inf`` in [0, 1].

    Returns
    -------
    ndarray, same shape as ``lag_days``
    """
    lag = np.abs(np.asarray(lag_days, dtype=float))
    return floor + (1.0 - floor) * np.exp(-lag / drift_time_days)


@dataclass
class SyntheticRecording:
    """A planted-drift recording and its ground truth.

    Attributes
    ----------
    sessions : list of SessionTimeseries
        Per session: ``activity (frames_k, cells_k)`` dF/F, ``labels (frames_k,)``
        stimulus id as float (NaN on grey frames), ``include (frames_k,)`` running mask,
        ``trials (frames_k,)`` trial id, ``unit_ids (cells_k,)`` the registered unit of
        each cell, ``time`` in days.
    registration : ndarray of int64, shape (units, sessions)
        0-based cell index of each unit in each session, -1 where missed.
    session_times : ndarray, shape (sessions,)
        Days since the first session.
    tuning : ndarray, shape (sessions, units, stimuli)
        Planted mean response (dF/F) of every unit, missed or not.
    speed : list of ndarray, each shape (frames_k,)
        Running speed (cm/s).
    drift_time_days, floor : float
        Parameters of the planted correlation curve (see :func:`planted_pv_correlation`).
    frame_rate : float
        Frames per second.
    """

    sessions: list[SessionTimeseries]
    registration: np.ndarray
    session_times: np.ndarray
    tuning: np.ndarray
    speed: list[np.ndarray]
    drift_time_days: float
    floor: float
    frame_rate: float

    @property
    def cellreg_map(self) -> np.ndarray:
        """The registration in CellReg's convention: 1-based, 0 = not found."""
        return self.registration + 1

    def expected_pv_correlation(self) -> np.ndarray:
        """Planted PV correlation between every pair of sessions, shape (sessions, sessions)."""
        lag = self.session_times[:, None] - self.session_times[None, :]
        return planted_pv_correlation(lag, self.drift_time_days, self.floor)


def _ou_paths(rng: np.random.Generator, times: np.ndarray, shape: tuple[int, ...], tau: float):
    x = np.empty((len(times),) + shape)
    x[0] = rng.standard_normal(shape)
    for k in range(1, len(times)):
        r = np.exp(-(times[k] - times[k - 1]) / tau)
        x[k] = r * x[k - 1] + np.sqrt(1.0 - r * r) * rng.standard_normal(shape)
    return x


def _speed_trace(rng: np.random.Generator, n_frames: int, frame_rate: float) -> np.ndarray:
    """Smooth non-negative running speed (cm/s), an AR(1) with a ~2 s time constant."""
    alpha = np.exp(-1.0 / (2.0 * frame_rate))
    drive = rng.standard_normal(n_frames) * np.sqrt(1 - alpha**2)
    z = lfilter([1.0], [1.0, -alpha], drive)
    return np.clip(8.0 + 10.0 * z, 0.0, None)


def synthetic_recording(
    n_sessions: int = 6,
    n_units: int = 120,
    n_stimuli: int = 8,
    drift_time_days: float = 6.0,
    floor: float = 0.3,
    seed: int = 0,
    *,
    session_interval_days: float = 2.0,
    n_trials: int = 8,
    extra_trials: int = 3,
    frames_per_stimulus: int = 8,
    grey_frames: int = 6,
    frame_rate: float = 15.0,
    baseline: float = 0.5,
    scale: float = 0.25,
    noise: float = 0.1,
    calcium_decay_frames: float = 1.0,
    stationary_gain: float = 0.5,
    speed_threshold: float = 2.0,
    p_missing: float = 0.2,
) -> SyntheticRecording:
    """Generate a calcium-imaging-like recording with planted drift.

    Parameters
    ----------
    n_sessions, n_units, n_stimuli : int
        Sessions, registered units (cells tracked in at least one session) and stimuli.
    drift_time_days : float
        Time constant ``tau`` (days) of the drifting part of the tuning.
    floor : float
        Stable fraction ``c_inf`` of the tuning variance, the asymptotic PV correlation.
    seed : int
        Seed of the random generator; equal seeds give equal recordings.
    session_interval_days : float
        Days between consecutive sessions.
    n_trials, extra_trials : int
        Session ``k`` has ``n_trials + randint(0, extra_trials + 1)`` trials, so frame
        counts differ between sessions.
    frames_per_stimulus, grey_frames : int
        Frames per stimulus presentation, grey frames before each trial.
    frame_rate : float
        Frames per second (used by the running-speed trace).
    baseline, scale : float
        Mean response is ``baseline + scale * z`` (dF/F).
    noise : float
        Standard deviation of the per-frame Gaussian noise (dF/F).
    calcium_decay_frames : float
        Decay time (frames) of the unit-gain calcium kernel; 0 disables it.
    stationary_gain : float
        Response gain while not running.
    speed_threshold : float
        Running speed (cm/s) above which frames are included.
    p_missing : float
        Probability that a unit is not found in a session.

    Returns
    -------
    SyntheticRecording
    """
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must be in [0, 1] (got {floor})")
    if drift_time_days <= 0:
        raise ValueError(f"drift_time_days must be > 0 (got {drift_time_days})")
    if not 0.0 <= p_missing < 1.0:
        raise ValueError(f"p_missing must be in [0, 1) (got {p_missing})")
    rng = np.random.default_rng(seed)
    times = session_interval_days * np.arange(n_sessions, dtype=float)
    stable = rng.standard_normal((n_units, n_stimuli))
    drifting = _ou_paths(rng, times, (n_units, n_stimuli), drift_time_days)
    z = np.sqrt(floor) * stable[None] + np.sqrt(1.0 - floor) * drifting
    tuning = baseline + scale * z

    present = rng.random((n_units, n_sessions)) >= p_missing
    lost = ~present.any(axis=1)
    present[lost, rng.integers(0, n_sessions, size=int(lost.sum()))] = True

    alpha = np.exp(-1.0 / calcium_decay_frames) if calcium_decay_frames > 0 else 0.0
    registration = np.full((n_units, n_sessions), -1, dtype=np.int64)
    sessions: list[SessionTimeseries] = []
    speeds: list[np.ndarray] = []
    for k in range(n_sessions):
        units_here = rng.permutation(np.flatnonzero(present[:, k]))
        registration[units_here, k] = np.arange(units_here.size)
        trials_k = n_trials + int(rng.integers(0, extra_trials + 1))
        labels, trial_id = [], []
        for t in range(trials_k):
            labels.append(np.full(grey_frames, np.nan))
            trial_id.append(np.full(grey_frames, t))
            for s in rng.permutation(n_stimuli):
                labels.append(np.full(frames_per_stimulus, float(s)))
                trial_id.append(np.full(frames_per_stimulus, t))
        lab = np.concatenate(labels)
        tid = np.concatenate(trial_id)
        n_frames = lab.size
        speed = _speed_trace(rng, n_frames, frame_rate)
        running = speed > speed_threshold
        stim = np.where(np.isnan(lab), 0, lab).astype(int)
        signal = np.where(np.isnan(lab)[:, None], 0.0, tuning[k][units_here][:, stim].T)
        signal = signal * np.where(running, 1.0, stationary_gain)[:, None]
        if alpha > 0:
            signal = lfilter([1.0 - alpha], [1.0, -alpha], signal, axis=0)
        activity = signal + noise * rng.standard_normal(signal.shape)
        sessions.append(
            SessionTimeseries(
                activity=activity,
                labels=lab,
                time=float(times[k]),
                include=running,
                trials=tid,
                unit_ids=units_here.copy(),
                frame_times=np.arange(n_frames) / frame_rate,
                source=f"synthetic session {k}",
                units="dF/F",
            )
        )
        speeds.append(speed)
    return SyntheticRecording(
        sessions=sessions,
        registration=registration,
        session_times=times,
        tuning=tuning,
        speed=speeds,
        drift_time_days=float(drift_time_days),
        floor=float(floor),
        frame_rate=float(frame_rate),
    )
