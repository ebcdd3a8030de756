"""Reading and writing data in the ndk-drift format."""

from drift.io._common import RecordingWarning, session_days
from drift.io.cellreg import match_unit_ids, read_cellreg, validate_registration
from drift.io.convert import build_recording, convert_recording, load_recording_spec
from drift.io.nwb import read_nwb
from drift.io.recordings import SessionTimeseries, from_arrays, from_sessions, from_timeseries
from drift.io.runstore import PartialRunWarning, open_run
from drift.io.schema import validate_dataset
from drift.io.store import write_dataset
from drift.io.suite2p import read_suite2p
from drift.io.synthetic import SyntheticRecording, synthetic_recording

__all__ = [
    "PartialRunWarning",
    "RecordingWarning",
    "SessionTimeseries",
    "SyntheticRecording",
    "build_recording",
    "convert_recording",
    "from_arrays",
    "from_sessions",
    "from_timeseries",
    "load_recording_spec",
    "match_unit_ids",
    "open_run",
    "read_cellreg",
    "read_nwb",
    "read_suite2p",
    "session_days",
    "synthetic_recording",
    "validate_dataset",
    "validate_registration",
    "write_dataset",
]
